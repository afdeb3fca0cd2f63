// The container health check of the artifactstate image (see main.go): its
// own module with no dependencies, so the image build compiles it without the
// deployment tests' modules.
module github.com/artifactstate/artifactstate/deploy/compose/healthprobe

go 1.27.3

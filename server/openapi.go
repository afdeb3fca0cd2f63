package server

import _ "embed"

// OpenAPI is the API's OpenAPI 3 description, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Command vulnfilter reads the `govulncheck -format json` reports of one or
// more binaries (arguments name=file) and fails when a binary calls (binary
// mode: links) a vulnerable symbol, unless the vulnerability is listed in
// the accepted file with a reason. Vulnerabilities in modules a binary
// requires but does not call are reported and do not fail. An accepted
// entry that no binary calls any more is reported as stale.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

type message struct {
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
		} `json:"trace"`
	} `json:"finding"`
}

func main() {
	acceptedFile := flag.String("accepted", "", "file of accepted vulnerabilities: an OSV ID and the reason on each line")
	flag.Parse()
	accepted, err := readAccepted(*acceptedFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnfilter:", err)
		os.Exit(2)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "vulnfilter: name the reports, as binary=report.json")
		os.Exit(2)
	}
	calledAnywhere := map[string]bool{}
	failed := false
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "vulnfilter: %q is not binary=report.json\n", arg)
			os.Exit(2)
		}
		r, err := readReport(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vulnfilter: %s: %v\n", path, err)
			os.Exit(2)
		}
		fmt.Printf("govulncheck: %s\n", name)
		for id := range r.called {
			calledAnywhere[id] = true
		}
		if !r.print(accepted, *acceptedFile) {
			failed = true
		}
	}
	ids := make([]string, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if !calledAnywhere[id] {
			fmt.Printf("stale: %s is accepted but no binary calls it: remove it from %s\n", id, *acceptedFile)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// report is one binary's findings.
type report struct {
	summaries map[string]string
	called    map[string][]string // OSV ID -> the symbols the binary calls
	uncalled  map[string]bool
}

func readReport(path string) (report, error) {
	r := report{summaries: map[string]string{}, called: map[string][]string{}, uncalled: map[string]bool{}}
	f, err := os.Open(path)
	if err != nil {
		return r, err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return r, nil
		} else if err != nil {
			return r, fmt.Errorf("reading govulncheck's output: %w", err)
		}
		if m.OSV != nil {
			r.summaries[m.OSV.ID] = m.OSV.Summary
		}
		if f := m.Finding; f != nil && len(f.Trace) > 0 {
			top := f.Trace[0]
			if top.Function == "" {
				r.uncalled[f.OSV] = true
				continue
			}
			where := fmt.Sprintf("%s@%s %s.%s (fixed in %s)", top.Module, top.Version, top.Package, symbol(top.Receiver, top.Function), orNone(f.FixedVersion))
			if !slices.Contains(r.called[f.OSV], where) {
				r.called[f.OSV] = append(r.called[f.OSV], where)
			}
		}
	}
}

// print reports the binary's findings; false when one is not accepted.
func (r report) print(accepted map[string]string, acceptedFile string) bool {
	var failing, ok []string
	for id := range r.called {
		if _, acc := accepted[id]; acc {
			ok = append(ok, id)
		} else {
			failing = append(failing, id)
		}
	}
	slices.Sort(failing)
	slices.Sort(ok)
	uncalled := make([]string, 0, len(r.uncalled))
	for id := range r.uncalled {
		if _, isCalled := r.called[id]; !isCalled {
			uncalled = append(uncalled, id)
		}
	}
	slices.Sort(uncalled)
	for _, id := range uncalled {
		fmt.Printf("not called: %s %s\n", id, r.summaries[id])
	}
	for _, id := range ok {
		fmt.Printf("ACCEPTED  %s %s\n          reason: %s\n", id, r.summaries[id], accepted[id])
	}
	for _, id := range failing {
		fmt.Printf("VULNERABLE %s %s\n", id, r.summaries[id])
		for i, w := range r.called[id] {
			if i == 3 {
				fmt.Printf("           ... and %d more symbols\n", len(r.called[id])-3)
				break
			}
			fmt.Printf("           %s\n", w)
		}
	}
	if len(failing) > 0 {
		fmt.Printf("%d vulnerabilities affect code the binary calls: upgrade the modules (or accept one in %s, with a reason)\n", len(failing), acceptedFile)
		return false
	}
	fmt.Printf("no unaccepted vulnerability in called code (%d accepted)\n", len(ok))
	return true
}

func symbol(recv, fn string) string {
	if recv == "" {
		return fn
	}
	return strings.TrimPrefix(recv, "*") + "." + fn
}

func orNone(v string) string {
	if v == "" {
		return "no fixed version"
	}
	return v
}

func readAccepted(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(id, "GO-") || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want \"GO-YYYY-NNNN reason\", got %q", path, i+1, line)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, nil
}

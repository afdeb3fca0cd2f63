// Command vulnfilter reads `govulncheck -format json` on stdin and fails
// when the scanned code calls (binary mode: links) a vulnerable symbol,
// unless the vulnerability is listed in the accepted file with a reason.
// Vulnerabilities in modules the code requires but does not call are
// reported and do not fail.
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
	summaries := map[string]string{}
	called := map[string][]string{}
	uncalled := map[string]bool{}
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "vulnfilter: reading govulncheck's output:", err)
			os.Exit(2)
		}
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		if f := m.Finding; f != nil && len(f.Trace) > 0 {
			top := f.Trace[0]
			if top.Function == "" {
				uncalled[f.OSV] = true
				continue
			}
			where := fmt.Sprintf("%s@%s %s.%s (fixed in %s)", top.Module, top.Version, top.Package, symbol(top.Receiver, top.Function), orNone(f.FixedVersion))
			if !slices.Contains(called[f.OSV], where) {
				called[f.OSV] = append(called[f.OSV], where)
			}
		}
	}
	var failing, ok []string
	for id := range called {
		if _, acc := accepted[id]; acc {
			ok = append(ok, id)
		} else {
			failing = append(failing, id)
		}
	}
	slices.Sort(failing)
	slices.Sort(ok)
	for id := range uncalled {
		if _, isCalled := called[id]; !isCalled {
			fmt.Printf("not called: %s %s\n", id, summaries[id])
		}
	}
	for _, id := range ok {
		fmt.Printf("ACCEPTED  %s %s\n          reason: %s\n", id, summaries[id], accepted[id])
	}
	for id := range accepted {
		if _, isCalled := called[id]; !isCalled {
			fmt.Printf("stale: %s is accepted but no longer found: remove it from %s\n", id, *acceptedFile)
		}
	}
	for _, id := range failing {
		fmt.Printf("VULNERABLE %s %s\n", id, summaries[id])
		for i, w := range called[id] {
			if i == 3 {
				fmt.Printf("           ... and %d more symbols\n", len(called[id])-3)
				break
			}
			fmt.Printf("           %s\n", w)
		}
	}
	if len(failing) > 0 {
		fmt.Printf("%d vulnerabilities affect code the binary calls: upgrade the modules (or accept one in %s, with a reason)\n", len(failing), *acceptedFile)
		os.Exit(1)
	}
	fmt.Printf("no unaccepted vulnerability in called code (%d accepted)\n", len(ok))
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

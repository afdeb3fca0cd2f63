package loadtest

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/artifactstate/artifactstate/internal/entityid"
)

// names.txt holds common surnames, one a line: the user IDs of the load,
// as the Gatling scenario's lastnames.csv did.
//
//go:embed names.txt
var namesTxt string

// DefaultNames returns the embedded list of surnames.
func DefaultNames() []string {
	names, err := ReadNames(strings.NewReader(namesTxt))
	if err != nil {
		panic("loadtest: embedded names.txt: " + err.Error())
	}
	return names
}

// ReadNames reads user IDs, one a line, or the first column of a CSV file
// (as Gatling's csv feeder read lastnames.csv; a first line "name" is its
// header). Blank lines are skipped, duplicates kept once; every name must
// be a valid user ID.
func ReadNames(r io.Reader) ([]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true
	var names []string
	seen := map[string]bool{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		name := strings.TrimSpace(rec[0])
		if name == "" || (first && strings.EqualFold(name, "name")) || seen[name] {
			continue
		}
		if err := entityid.ValidateUserID(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		seen[name] = true
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, errors.New("no names")
	}
	return names, nil
}

// UserNames returns n user IDs from list: its first n, or all of it and
// then "<name>-2", "<name>-3", ... when n is larger.
func UserNames(list []string, n int) []string {
	out := make([]string, 0, n)
	for i := range n {
		name := list[i%len(list)]
		if k := i / len(list); k > 0 {
			name += "-" + strconv.Itoa(k+1)
		}
		out = append(out, name)
	}
	return out
}

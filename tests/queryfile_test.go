package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// namedQuery returns the statement called name in queries/*.sql with its
// @named parameters numbered $1, $2, … in order of first appearance, which is
// what sqlc sends. Tests EXPLAIN the audited text itself, not a copy.
func namedQuery(t *testing.T, name string) string {
	t.Helper()
	files, err := filepath.Glob("../queries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no query files: %v", err)
	}
	header := regexp.MustCompile(`(?m)^-- name: (\w+) :\w+\s*$`)
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		locs := header.FindAllSubmatchIndex(body, -1)
		for i, loc := range locs {
			if string(body[loc[2]:loc[3]]) != name {
				continue
			}
			end := len(body)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			return numberParams(stripTrailingComments(string(body[loc[1]:end])))
		}
	}
	t.Fatalf("query %s not found in queries/", name)
	return ""
}

// stripTrailingComments drops the comment lines that document the next query.
func stripTrailingComments(sql string) string {
	lines := strings.Split(strings.TrimSpace(sql), "\n")
	for len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[len(lines)-1]), "--") {
		lines = lines[:len(lines)-1]
	}
	return strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";")
}

var paramRE = regexp.MustCompile(`@(\w+)|sqlc\.narg\((\w+)\)`)

func numberParams(sql string) string {
	seen := map[string]int{}
	return paramRE.ReplaceAllStringFunc(sql, func(m string) string {
		sub := paramRE.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		n, ok := seen[name]
		if !ok {
			n = len(seen) + 1
			seen[name] = n
		}
		return "$" + strconv.Itoa(n)
	})
}

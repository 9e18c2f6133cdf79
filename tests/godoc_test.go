package tests

import (
	"go/ast"

	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// loadDoc parses the non-test files of the package in dir.
func loadDoc(t *testing.T, dir, importPath string) (*doc.Package, map[string]bool) {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	unexported := map[string]bool{}
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && !d.Name.IsExported() {
					unexported[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if !n.IsExported() {
								unexported[n.Name] = true
							}
						}
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							unexported[s.Name.Name] = true
						}
					}
				}
			}
		}
	}
	p, err := doc.NewFromFiles(fset, files, importPath)
	if err != nil {
		t.Fatal(err)
	}
	return p, unexported
}

// TestGodocNamesNoUnexportedIdentifiers: the documentation of an exported
// identifier is read by users, who cannot see the package's unexported
// constants, variables, functions and types; naming one (BatchPut once named
// copyThreshold) tells them nothing. Issue 12, defect 8.
func TestGodocNamesNoUnexportedIdentifiers(t *testing.T) {
	t.Parallel()
	p, unexported := loadDoc(t, "../state", "github.com/pgstate/pgstate/state")
	word := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	check := func(name, text string) {
		for _, w := range word.FindAllString(text, -1) {
			// Short common words (a variable called "now") read as prose.
			if unexported[w] && len(w) > 6 && strings.ToLower(w) != w {
				t.Errorf("the doc of %s names the unexported %s", name, w)
			}
		}
	}
	var names []string
	docs := map[string]string{}
	add := func(name, text string) { names = append(names, name); docs[name] = text }
	for _, f := range p.Funcs {
		add(f.Name, f.Doc)
	}
	for _, typ := range p.Types {
		add(typ.Name, typ.Doc)
		for _, f := range typ.Funcs {
			add(f.Name, f.Doc)
		}
		for _, m := range typ.Methods {
			add(typ.Name+"."+m.Name, m.Doc)
		}
	}
	for _, v := range append(p.Vars, p.Consts...) {
		add(strings.Join(v.Names, ","), v.Doc)
	}
	sort.Strings(names)
	for _, n := range names {
		check(n, docs[n])
	}
}

// TestGenHasPackageDoc: the generated package says what it is, and the unit
// of the TTL parameters, which the SQL alone stated. Issue 12, defect 8.
func TestGenHasPackageDoc(t *testing.T) {
	t.Parallel()
	p, _ := loadDoc(t, "../gen", "github.com/pgstate/pgstate/gen")
	if !strings.HasPrefix(p.Doc, "Package gen ") {
		t.Fatalf("gen's package comment is %q, want one starting \"Package gen \"", p.Doc)
	}
	if !strings.Contains(p.Doc, "TtlMicros") || !strings.Contains(p.Doc, "microseconds") {
		t.Errorf("gen's package comment does not give TtlMicros's unit:\n%s", p.Doc)
	}
}

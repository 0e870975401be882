// Package errlint is the error-wrapping check run by `make lint`:
// go-errorlint (github.com/polyfloyd/go-errorlint) with its fmt.Errorf check
// turned on (an error formatted with %v or %s instead of %w hides it from
// errors.Is and errors.As, so a database failure can pass for a transition
// failure), plus its comparison and type-assertion checks.
//
// A call that must not wrap on purpose (to keep a credential-bearing error out
// of the chain, or to stop errors.Is matching) is kept and marked, on the line
// of the error argument (where the report is), with
//
//	fmt.Errorf("...: %v", err) //nolint:errorlint // why it is not wrapped
//
// which the standalone go-errorlint does not honour (golangci-lint does).
package errlint

import (
	"go/token"
	"regexp"
	"strings"

	"github.com/polyfloyd/go-errorlint/errorlint"
	"golang.org/x/tools/go/analysis"
)

// Analyzer is go-errorlint with -errorf on and //nolint:errorlint honoured.
var Analyzer = newAnalyzer()

func newAnalyzer() *analysis.Analyzer {
	a := errorlint.NewAnalyzer()
	if err := a.Flags.Set("errorf", "true"); err != nil {
		panic(err)
	}
	run := a.Run
	a.Run = func(pass *analysis.Pass) (any, error) {
		quiet := nolintLines(pass)
		filtered := *pass
		filtered.Report = func(d analysis.Diagnostic) {
			p := pass.Fset.Position(d.Pos)
			if !quiet[fileLine{p.Filename, p.Line}] {
				pass.Report(d)
			}
		}
		return run(&filtered)
	}
	return a
}

type fileLine struct {
	file string
	line int
}

// nolintRE matches a golangci-lint style directive: //nolint:a,b[ // why].
var nolintRE = regexp.MustCompile(`^//\s*nolint:([\w,-]+)`)

// nolintLines are the lines carrying a //nolint directive naming errorlint.
func nolintLines(pass *analysis.Pass) map[fileLine]bool {
	quiet := map[fileLine]bool{}
	for _, f := range pass.Files {
		for _, g := range f.Comments {
			for _, c := range g.List {
				m := nolintRE.FindStringSubmatch(c.Text)
				if m == nil || !names(m[1], "errorlint") {
					continue
				}
				quiet[position(pass.Fset, c.Pos())] = true
			}
		}
	}
	return quiet
}

func names(list, name string) bool {
	for _, n := range strings.Split(list, ",") {
		if n == name {
			return true
		}
	}
	return false
}

func position(fset *token.FileSet, pos token.Pos) fileLine {
	p := fset.Position(pos)
	return fileLine{p.Filename, p.Line}
}

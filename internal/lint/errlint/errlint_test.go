package errlint_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"sentinel-go/internal/lint/errlint"
)

func TestAnalyzer(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), errlint.Analyzer, "a")
}

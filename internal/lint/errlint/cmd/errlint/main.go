// Command errlint is the errlint analyzer as a go vet tool:
//
//	go build -o bin/errlint ./internal/lint/errlint/cmd/errlint
//	go vet -vettool=$PWD/bin/errlint ./...
package main

import (
	"golang.org/x/tools/go/analysis/unitchecker"

	"sentinel-go/internal/lint/errlint"
)

func main() { unitchecker.Main(errlint.Analyzer) }

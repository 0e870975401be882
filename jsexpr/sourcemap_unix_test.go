//go:build unix

package jsexpr

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSourceMapCommentReadsNoFile checks that a trailing
// "//# sourceMappingURL=<path>" comment, which goja's default parser follows
// by reading the path from disk, reads nothing, neither in Compile nor in
// code compiled by the script. The path is a FIFO with no writer: opening it
// blocks, so a read shows up as a hang instead of a slow OOM (as /dev/zero
// would give).
func TestSourceMapCommentReadsNoFile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "map.fifo"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// goja resolves the URL against the program name (against the working
	// directory when the name is relative, as config paths are).
	name := filepath.Join(dir, "expr")
	comment := "\n//# sourceMappingURL=map.fifo"
	done := make(chan error, 1)
	go func() {
		p, err := Compile(name, "1"+comment)
		if err != nil {
			done <- err
			return
		}
		if _, err := NewSandbox(Options{}).Eval(context.Background(), p, nil); err != nil {
			done <- err
			return
		}
		_, err = CompileFunction(name, "function () { return 1 }"+comment)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("compiling a source with a sourceMappingURL comment blocked: it tried to read the file")
	}
}

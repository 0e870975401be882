// Package graceful gives work that must not stop halfway a context of its
// own: a stop leaves it a grace period to finish (a batch's writes, a
// checkpoint, a push under way), so that what it did is recorded, and the
// process still exits within its bound.
package graceful

import (
	"context"
	"time"
)

// Context returns a context that ends bound after now, or grace after ctx
// ends, whichever comes first; call the returned func when the work is done.
func Context(ctx context.Context, bound, grace time.Duration) (context.Context, func()) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
	stopWatch := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-pctx.Done(): // the work ended first
		}
	})
	return pctx, func() {
		stopWatch()
		cancel()
	}
}

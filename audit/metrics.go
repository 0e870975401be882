package audit

import "github.com/prometheus/client_golang/prometheus"

// metrics say whether auditing is on and what became of its entries.
type metrics struct {
	enabled prometheus.GaugeFunc
	queued  prometheus.GaugeFunc
	entries *prometheus.CounterVec
	written prometheus.Counter
	dropped prometheus.Counter
	lost    prometheus.Counter
}

func newMetrics(l *Log) *metrics {
	m := &metrics{
		enabled: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_audit_enabled",
			Help: "1 while the daemon records its writes in <db>-audit, 0 when auditing is off."}, func() float64 {
			if l.Enabled() {
				return 1
			}
			return 0
		}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sentinel_audit_queued_entries",
			Help: "Audit entries waiting to be written."}, func() float64 { return float64(l.Queued()) }),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_audit_entries_total",
			Help: "Audit entries by outcome: written; dropped (the queue was full while the audit db failed); lost (a conflict that outlasted the retries, a rejected doc, unwritten at stop)."},
			[]string{"result"}),
	}
	m.written = m.entries.WithLabelValues("written")
	m.dropped = m.entries.WithLabelValues("dropped")
	m.lost = m.entries.WithLabelValues("lost")
	return m
}

// Collectors are the Log's metrics, for the daemon's registry.
func (l *Log) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.metrics.enabled, l.metrics.queued, l.metrics.entries}
}

package roles

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the pipeline's Prometheus series. Each process has its own
// registry (never the global one), so tests can start several in one binary.
type Metrics struct {
	Registry  *prometheus.Registry
	Uploads   *prometheus.CounterVec   // by outcome: accepted, duplicate, or the refusal code
	Handled   *prometheus.CounterVec   // messages handled, by role and outcome
	Transform *prometheus.HistogramVec // seconds per variant, by output format
	HTTP      *prometheus.HistogramVec // request seconds by method, route and status
	// UploadBytes is what uploads being read hold in memory now, against
	// http.max_inflight_upload_bytes.
	UploadBytes prometheus.Gauge
	// OutageWaits is how many transform workers hold an image until the
	// bus, or the store, answers again.
	OutageWaits prometheus.Gauge
}

// NewMetrics registers the series, plus Go and process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgpipe_uploads_total", Help: "Uploaded images by outcome.",
		}, []string{"outcome"}),
		Handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgpipe_messages_handled_total", Help: "Bus messages handled by role and outcome.",
		}, []string{"role", "outcome"}),
		Transform: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imgpipe_transform_seconds", Help: "Time to produce one variant.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}, []string{"format"}),
		HTTP: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imgpipe_http_request_seconds", Help: "HTTP requests by method, route and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		UploadBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imgpipe_upload_bytes_held", Help: "Bytes of uploads being read, reserved against http.max_inflight_upload_bytes.",
		}),
	}
	m.OutageWaits = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "imgpipe_transform_outage_waits", Help: "Transform workers holding an image until the bus or the store answers again.",
	})
	r.MustRegister(m.Uploads, m.Handled, m.Transform, m.HTTP, m.UploadBytes, m.OutageWaits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

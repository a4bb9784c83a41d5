package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/roles"
)

// API is the api role's HTTP handlers. It holds no image state: every
// answer comes through roles.API from the shared status table or the store.
type API struct {
	cfg     Config
	pipe    *roles.API
	metrics *roles.Metrics
	// stopping ends live streams and long polls when shutdown begins:
	// the listener's graceful stop waits for every handler, and these
	// would otherwise hold it for their whole length.
	stopping <-chan struct{}
}

// NewAPI builds the handlers.
func NewAPI(cfg Config, pipe *roles.API, m *roles.Metrics, stopping <-chan struct{}) *API {
	return &API{cfg: cfg, pipe: pipe, metrics: m, stopping: stopping}
}

// Mount adds the v1 API and the prototype's endpoints. Resources answer
// HEAD as GET without the body (net/http drops it), for caches and clients
// that check an image before fetching it; the event stream does not.
func (a *API) Mount(e *echo.Echo) {
	read := []string{http.MethodGet, http.MethodHead}
	v1 := e.Group("/v1")
	v1.POST("/images", a.postImages)
	v1.Match(read, "/images", a.listImages)
	v1.Match(read, "/images/:id", a.getImage)
	v1.Match(read, "/images/:id/result", a.getResult)
	v1.Match(read, "/images/:id/original", a.getOriginal)
	v1.Match(read, "/images/:id/activity", a.getActivity)
	v1.GET("/events", a.events)
	v1.Match(read, "/activity", a.recentActivity)
	v1.Match(read, "/presets", a.presets)

	e.POST("/image", a.legacyPost)
	e.Match(read, "/image/:id", a.legacyGet)
}

// presets is GET /v1/presets: name -> canonical spec.
func (a *API) presets(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"presets": a.pipe.Engine().Presets()})
}

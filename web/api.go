package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

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
	waiters  *waiters // of long polls, see longpoll.go
	budget   *uploadBudget
}

// NewAPI builds the handlers.
func NewAPI(cfg Config, pipe *roles.API, m *roles.Metrics, stopping <-chan struct{}, log *slog.Logger) *API {
	return &API{cfg: cfg, pipe: pipe, metrics: m, stopping: stopping,
		waiters: &waiters{pipe: pipe, stopping: stopping, log: log},
		budget:  &uploadBudget{limit: cfg.MaxInflightUploadBytes, held: m.UploadBytes}}
}

// Mount adds the v1 API and the prototype's endpoints. Resources answer
// HEAD as GET without the body (net/http drops it), for caches and clients
// that check an image before fetching it; the event stream does not.
func (a *API) Mount(e *echo.Echo) {
	if len(a.cfg.CORSOrigins) > 0 {
		// On every route, before routing: a preflight OPTIONS has no route
		// of its own. The methods it is told are the path's routes'.
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins: a.cfg.CORSOrigins,
			// What a page needs to follow an upload and reuse a result.
			ExposeHeaders: []string{echo.HeaderLocation, "ETag", echo.HeaderRetryAfter},
			MaxAge:        600,
		}))
	}
	read := []string{http.MethodGet, http.MethodHead}
	v1 := e.Group("/v1")
	v1.POST("/images", a.postImages, crossSiteUploads(), a.withUploadBudget) // parses its query strictly itself
	v1.Match(read, "/images", a.listImages, strictQuery)
	v1.Match(read, "/images/:id", a.getImage, strictQuery)
	v1.Match(read, "/images/:id/result", a.getResult, strictQuery)
	v1.Match(read, "/images/:id/original", a.getOriginal, strictQuery)
	v1.Match(read, "/images/:id/activity", a.getActivity, strictQuery)
	v1.GET("/events", a.events, strictQuery)
	v1.Match(read, "/activity", a.recentActivity, strictQuery)
	v1.Match(read, "/presets", a.presets, strictQuery)
	v1.Match(read, "/limits", a.limits, strictQuery)

	e.POST("/image", a.legacyPost, crossSiteUploads(), a.withUploadBudget)
	e.Match(read, "/image/:id", a.legacyGet, strictQuery)
}

// strictQuery refuses a query string with a malformed escape. net/url
// drops such a pair without a word, so ?limit=%ZZ would list with the
// default limit and ?wait=%ZZ would not wait.
func strictQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		q, err := url.ParseQuery(c.Request().URL.RawQuery)
		if err != nil {
			return newError(http.StatusBadRequest, "bad_query", "malformed query string: "+err.Error())
		}
		// Every parameter of these routes takes one value: which of two
		// would win is a guess the client should not have to make.
		for name, values := range q {
			if len(values) > 1 {
				return newError(http.StatusBadRequest, "bad_query", fmt.Sprintf("parameter %q is given %d times; give it once", name, len(values)))
			}
		}
		return next(c)
	}
}

// presets is GET /v1/presets: name -> canonical spec, and the spec an
// upload with no parameter at all gets.
func (a *API) presets(c echo.Context) error {
	e := a.pipe.Engine()
	return c.JSON(http.StatusOK, map[string]any{"presets": e.Presets(), "default": e.Config().DefaultSpec})
}

// limits is GET /v1/limits: what an upload must keep within, so that a
// client (the UI) can say so before sending megabytes to be refused.
func (a *API) limits(c echo.Context) error {
	t := a.pipe.Engine().Config()
	return c.JSON(http.StatusOK, map[string]any{
		"max_upload_bytes":     a.cfg.MaxUploadBytes,
		"max_files":            a.cfg.MaxFiles,
		"max_input_pixels":     t.MaxInputPixels,
		"max_output_dimension": t.MaxOutputDim,
		"max_output_pixels":    t.MaxOutputPixels,
	})
}

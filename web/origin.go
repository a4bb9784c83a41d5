package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// crossSiteUploads refuses an upload that a browser sends on behalf of a
// page from another origin, unless http.cors_origins lists it. CORS alone
// does not stop one: a form post, or a fetch of a text/plain body, is a
// "simple" request that goes out without a preflight, and since uploads
// are typed by their bytes, any page could make its visitors' browsers
// fill imgpipe with images. The check is net/http's (Sec-Fetch-Site, or
// Origin against Host); clients that are not browsers send neither and
// pass. An origin the CORS middleware allowed (it runs first, and marks
// the answer with Access-Control-Allow-Origin) passes too, so that the
// allowed origins, wildcards included, are matched in one place.
func crossSiteUploads() echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := cop.Check(c.Request()); err != nil && c.Response().Header().Get(echo.HeaderAccessControlAllowOrigin) == "" {
				from := c.Request().Header.Get(echo.HeaderOrigin)
				if from == "" {
					from = "another site"
				}
				return newError(http.StatusForbidden, "cross_origin",
					"uploads from a page on "+from+" are refused: list its origin in http.cors_origins to allow them")
			}
			return next(c)
		}
	}
}

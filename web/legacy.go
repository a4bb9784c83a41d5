package web

import (
	"cmp"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/roles"
)

// The original prototype's endpoints, kept so its clients keep working:
// POST /image with multipart field "image" answers {"id"}; GET /image/{id}
// answers 200 with the bytes, 204 while pending, 422 on failure.

func (a *API) legacyPost(c echo.Context) error {
	req, err := a.parseSpec(c)
	if err != nil {
		return err
	}
	ups, err := a.readUploads(c, "image")
	if err != nil {
		return err
	}
	if len(ups) > 1 {
		// Its answer holds one id: the others would be taken without any.
		return newError(http.StatusBadRequest, "one_file_expected",
			fmt.Sprintf("POST /image takes one file, got %d: send several to POST /v1/images", len(ups)))
	}
	img, _, err := a.ingest(c, ups[0], req)
	if err != nil {
		return err
	}
	a.pipe.AwaitActivity(c.Request().Context())
	return c.JSON(http.StatusOK, map[string]string{"id": img.ID})
}

func (a *API) legacyGet(c echo.Context) error {
	img, err := a.pipe.Lookup(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	switch img.Status {
	case model.StatusDone:
		return a.sendResult(c, img, "")
	case model.StatusFailed:
		return newError(http.StatusUnprocessableEntity, cmp.Or(img.ErrorCode, roles.CodeTransformFailed), img.Error)
	}
	return c.NoContent(http.StatusNoContent)
}

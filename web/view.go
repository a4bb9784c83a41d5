package web

import (
	"time"

	"github.com/imgpipe/imgpipe/model"
)

// imageView is an image as the API shows it: the record plus links, with
// the first result also under "result" for clients that asked for one.
type imageView struct {
	ID        string         `json:"id"`
	Status    model.Status   `json:"status"`
	Error     string         `json:"error,omitempty"`
	ErrorCode string         `json:"error_code,omitempty"`
	Spec      string         `json:"spec"`
	Original  model.Info     `json:"original"`
	Result    *model.Result  `json:"result,omitempty"`
	Results   []model.Result `json:"results,omitempty"`
	Attempts  int            `json:"attempts,omitempty"`
	Retries   int            `json:"retries,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	Links     links          `json:"links"`
}

type links struct {
	Self     string            `json:"self"`
	Result   string            `json:"result"`
	Original string            `json:"original"`
	Activity string            `json:"activity"`
	Variants map[string]string `json:"variants,omitempty"`
}

func viewOf(img *model.Image) *imageView {
	base := "/v1/images/" + img.ID
	v := &imageView{
		ID: img.ID, Status: img.Status, Error: img.Error, ErrorCode: img.ErrorCode, Spec: img.Spec, Original: img.Original,
		Results: img.Results, Attempts: img.Attempts, Retries: img.Retries, CreatedAt: img.CreatedAt, UpdatedAt: img.UpdatedAt,
		Links: links{Self: base, Result: base + "/result", Original: base + "/original", Activity: base + "/activity"},
	}
	if len(img.Results) > 0 {
		v.Result = &img.Results[0]
		v.Links.Variants = make(map[string]string, len(img.Results))
		for _, r := range img.Results {
			v.Links.Variants[r.Variant] = base + "/result?variant=" + r.Variant
		}
	}
	return v
}

// contentTypes maps the engine's format names to media types.
var contentTypes = map[string]string{
	"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
	"tiff": "image/tiff", "avif": "image/avif", "heif": "image/heif", "svg": "image/svg+xml", "pdf": "application/pdf",
}

func contentType(format string) string {
	if t, ok := contentTypes[format]; ok {
		return t
	}
	return "application/octet-stream"
}

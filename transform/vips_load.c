/* Loading and metadata (see vips_bridge.h). */
#include <string.h>
#include "vips_bridge.h"

/* ---- loading ------------------------------------------------------------ */

static int
ip_load_with(const void *buf, size_t len, int format, int n_all, int shrink,
	VipsAccess access, VipsFailOn fail_on, VipsImage **out)
{
	void *b = (void *) buf;

	switch (format) {
	case IP_JPEG:
		return vips_jpegload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, "shrink", VIPS_MAX(1, shrink), NULL);
	case IP_PNG:
		return vips_pngload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, NULL);
	case IP_WEBP:
		return vips_webpload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, "n", n_all ? -1 : 1, NULL);
	case IP_GIF:
		return vips_gifload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, "n", n_all ? -1 : 1, NULL);
	case IP_TIFF:
		return vips_tiffload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, NULL);
	case IP_AVIF:
	case IP_HEIF:
		return vips_heifload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, NULL);
	case IP_SVG:
		return vips_svgload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, NULL);
	case IP_PDF:
		return vips_pdfload_buffer(b, len, out, "access", access,
			"fail_on", fail_on, NULL);
	}
	vips_error("imgpipe", "unknown format %d", format);
	return -1;
}

/* Header only: libvips loaders read pixels lazily, on the first region. */
int
ip_header(const void *buf, size_t len, int format, VipsImage **out)
{
	return ip_load_with(buf, len, format, 0, 1, VIPS_ACCESS_SEQUENTIAL,
		VIPS_FAIL_ON_NONE, out);
}

/* shrink (1, 2, 4 or 8) is JPEG's shrink-on-load, used when an extract
 * comes before a large reduction. */
int
ip_load(const void *buf, size_t len, int format, int n_all, int shrink,
	VipsImage **out)
{
	return ip_load_with(buf, len, format, n_all, shrink,
		VIPS_ACCESS_SEQUENTIAL, VIPS_FAIL_ON_TRUNCATED, out);
}

/* Shrink-on-load resize. Rotation is left to the caller (no_rotate) so that
 * it happens after the pixels are materialised under the kill guard. */
/* vips_thumbnail leaves an embedded profile attached and the pixels in
 * that space; we strip metadata, so icc asks for a transform to sRGB. It
 * is only set for images with a profile: a no-op transform costs time. */
int
ip_thumbnail_buffer(const void *buf, size_t len, int n_all, int width,
	int height, int size, int icc, VipsImage **out)
{
	const char *options = n_all ? "n=-1,fail_on=truncated" : "fail_on=truncated";

	if (icc)
		return vips_thumbnail_buffer((void *) buf, len, out, width,
			"height", height, "size", size, "no_rotate", TRUE,
			"option_string", options, "export_profile", "srgb", NULL);
	return vips_thumbnail_buffer((void *) buf, len, out, width,
		"height", height, "size", size, "no_rotate", TRUE,
		"option_string", options, NULL);
}

int
ip_thumbnail_image(VipsImage *in, int width, int height, int size, int icc,
	VipsImage **out)
{
	if (icc)
		return vips_thumbnail_image(in, out, width, "height", height,
			"size", size, "no_rotate", TRUE, "export_profile", "srgb",
			NULL);
	return vips_thumbnail_image(in, out, width, "height", height,
		"size", size, "no_rotate", TRUE, NULL);
}

/* What vips_thumbnail_image does after its own steps (sequential wrapper,
 * colourspace to the processing space, premultiply, profile export) have
 * nothing to do: 8-bit sRGB or B_W, no alpha, no profile to convert. */
int
ip_is_plain(VipsImage *in)
{
	VipsInterpretation interp = vips_image_get_interpretation(in);
	int bands = vips_image_get_bands(in);

	return in->Coding == VIPS_CODING_NONE &&
		vips_image_get_format(in) == VIPS_FORMAT_UCHAR &&
		((bands == 3 && interp == VIPS_INTERPRETATION_sRGB) ||
		(bands == 1 && interp == VIPS_INTERPRETATION_B_W));
}

/* The resize vips_thumbnail_image would run, given its shrink factors.
 * Reducing, that is vips_resize's lanczos3 reducev then reduceh with its
 * default gap of 2, called directly: the same arithmetic, the same pixels,
 * without the wrapper operation and its unpack copy (an uncoded image
 * unpacks to itself). Enlarging, vips_resize itself. */
int
ip_resize_by(VipsImage *in, double hshrink, double vshrink, VipsImage **out)
{
	double hscale = 1.0 / hshrink;
	double vscale = 1.0 / vshrink;
	VipsImage *t = NULL;
	int result;

	hscale = VIPS_MAX(hscale, 1.0 / in->Xsize);
	vscale = VIPS_MAX(vscale, 1.0 / in->Ysize);
	if (in->Coding != VIPS_CODING_NONE || hscale > 1.0 || vscale > 1.0)
		return vips_resize(in, out, 1.0 / hshrink,
			"vscale", 1.0 / vshrink, NULL);
	if (vscale == 1.0 && hscale == 1.0) {
		g_object_ref(in);
		*out = in;
		return 0;
	}
	/* A sequential load makes reducev add a line cache on its output, so
	 * that worker threads computing tiles out of order still find their
	 * input lines. With one worker, tiles come in order: the cache only
	 * copies. The flag is process-wide, as is the cache's purpose. */
	if (vips_concurrency_get() == 1)
		vips_image_remove(in, VIPS_META_SEQUENTIAL);
	if (vscale == 1.0)
		return vips_reduceh(in, out, 1.0 / hscale,
			"kernel", VIPS_KERNEL_LANCZOS3, "gap", 2.0, NULL);
	if (vips_reducev(in, &t, 1.0 / vscale,
		"kernel", VIPS_KERNEL_LANCZOS3, "gap", 2.0, NULL))
		return -1;
	if (hscale == 1.0) {
		*out = t;
		return 0;
	}
	result = vips_reduceh(t, out, 1.0 / hscale,
		"kernel", VIPS_KERNEL_LANCZOS3, "gap", 2.0, NULL);
	g_object_unref(t);
	return result;
}

/* ---- metadata ----------------------------------------------------------- */

int ip_width(VipsImage *im) { return vips_image_get_width(im); }
int ip_height(VipsImage *im) { return vips_image_get_height(im); }
int ip_bands(VipsImage *im) { return vips_image_get_bands(im); }
int ip_band_format(VipsImage *im) { return vips_image_get_format(im); }
int ip_sample_size(VipsImage *im) { return vips_format_sizeof(vips_image_get_format(im)); }
int ip_page_height(VipsImage *im) { return vips_image_get_page_height(im); }
int ip_n_pages(VipsImage *im) { return vips_image_get_n_pages(im); }
int ip_orientation(VipsImage *im) { return vips_image_get_orientation(im); }
int ip_has_alpha(VipsImage *im) { return vips_image_hasalpha(im); }

const char *
ip_interpretation(VipsImage *im)
{
	return vips_enum_nick(VIPS_TYPE_INTERPRETATION,
		vips_image_get_interpretation(im));
}

/* A profile without the 'acsp' signature of its header (iccUsable's
 * rule) is taken as none: lcms refuses it, and the image failed whole
 * ("VipsIcc: not an ICC profile") when its pixels were fine, as browsers
 * show them, ignoring the profile. */
int
ip_has_icc(VipsImage *im)
{
	const void *data;
	size_t len;

	return vips_image_get_typeof(im, VIPS_META_ICC_NAME) &&
		!vips_image_get_blob(im, VIPS_META_ICC_NAME, &data, &len) &&
		len >= 132 && memcmp((const char *) data + 36, "acsp", 4) == 0;
}

const void *
ip_blob(VipsImage *im, const char *name, size_t *len)
{
	const void *data;

	*len = 0;
	if (vips_image_get_typeof(im, name) == 0 ||
		vips_image_get_blob(im, name, &data, len))
		return NULL;
	return data;
}

/* Metadata changes go on a copy: the input may be shared. */
int
ip_set_page_height(VipsImage *in, int page_height, VipsImage **out)
{
	if (vips_copy(in, out, NULL))
		return -1;
	vips_image_set_int(*out, VIPS_META_PAGE_HEIGHT, page_height);
	return 0;
}

/* Set 1 rather than remove: savers write the field back into kept EXIF,
 * so a stale 6 would make viewers rotate the upright result again. */
int
ip_reset_orientation(VipsImage *in, VipsImage **out)
{
	if (vips_copy(in, out, NULL))
		return -1;
	vips_image_set_int(*out, VIPS_META_ORIENTATION, 1);
	return 0;
}


/* Pixel operations: thin wrappers, decisions live in Go (see
 * vips_bridge.h). */
#include <string.h>
#include "vips_bridge.h"

/* ---- pixel operations --------------------------------------------------- */

int
ip_extract_area(VipsImage *in, int left, int top, int width, int height,
	VipsImage **out)
{
	return vips_extract_area(in, out, left, top, width, height, NULL);
}

int
ip_arrayjoin(VipsImage **in, int n, VipsImage **out)
{
	return vips_arrayjoin(in, out, n, "across", 1, NULL);
}

int
ip_embed(VipsImage *in, int x, int y, int width, int height, double *bg,
	int nbg, VipsImage **out)
{
	VipsArrayDouble *background = vips_array_double_new(bg, nbg);
	int result = vips_embed(in, out, x, y, width, height,
		"extend", VIPS_EXTEND_BACKGROUND, "background", background, NULL);

	vips_area_unref(VIPS_AREA(background));
	return result;
}

int
ip_rot(VipsImage *in, int angle, VipsImage **out)
{
	VipsAngle a = angle == 90 ? VIPS_ANGLE_D90 :
		angle == 180 ? VIPS_ANGLE_D180 :
		angle == 270 ? VIPS_ANGLE_D270 : VIPS_ANGLE_D0;

	return vips_rot(in, out, a, NULL);
}

int
ip_flip(VipsImage *in, int horizontal, VipsImage **out)
{
	return vips_flip(in, out, horizontal ?
		VIPS_DIRECTION_HORIZONTAL : VIPS_DIRECTION_VERTICAL, NULL);
}

/* Filters run on premultiplied alpha, or transparent pixels bleed their
 * (meaningless) colour into the edges. */
static int
ip_premultiplied(VipsImage *in, VipsImage **out,
	int (*op)(VipsImage *, VipsImage **, double), double arg)
{
	VipsImage *t[4] = { NULL, NULL, NULL, NULL };
	int result = -1;

	if (!vips_image_hasalpha(in)) {
		if (op(in, &t[0], arg) ||
			vips_cast(t[0], out, VIPS_FORMAT_UCHAR, NULL))
			goto done;
		result = 0;
		goto done;
	}
	if (vips_premultiply(in, &t[0], NULL) ||
		op(t[0], &t[1], arg) ||
		vips_unpremultiply(t[1], &t[2], NULL) ||
		vips_cast(t[2], out, VIPS_FORMAT_UCHAR, NULL))
		goto done;
	result = 0;
done:
	for (int i = 0; i < 4; i++)
		if (t[i])
			g_object_unref(t[i]);
	return result;
}

static int
ip_blur_op(VipsImage *in, VipsImage **out, double sigma)
{
	return vips_gaussblur(in, out, sigma, NULL);
}

static int
ip_resize_op(VipsImage *in, VipsImage **out, double scale)
{
	return vips_resize(in, out, scale, NULL);
}

int
ip_gaussblur(VipsImage *in, double sigma, VipsImage **out)
{
	return ip_premultiplied(in, out, ip_blur_op, sigma);
}

int
ip_resize(VipsImage *in, double scale, VipsImage **out)
{
	return ip_premultiplied(in, out, ip_resize_op, scale);
}

int
ip_sharpen(VipsImage *in, double sigma, VipsImage **out)
{
	VipsImage *t = NULL;
	VipsInterpretation interp = vips_image_get_interpretation(in);
	int result;

	/* sharpen works in LabS; bring the result back to what came in. */
	if (vips_sharpen(in, &t, "sigma", sigma, NULL))
		return -1;
	result = vips_colourspace(t, out, interp, NULL);
	g_object_unref(t);
	return result;
}

int
ip_smartcrop(VipsImage *in, int width, int height, int entropy,
	VipsImage **out)
{
	return vips_smartcrop(in, out, width, height, "interesting",
		entropy ? VIPS_INTERESTING_ENTROPY : VIPS_INTERESTING_ATTENTION,
		NULL);
}

/* 8-bit sRGB (or 8-bit B_W for greys unless colour is set): what every
 * later step expects. */
int
ip_to_srgb8(VipsImage *in, int colour, VipsImage **out)
{
	VipsInterpretation interp = vips_image_get_interpretation(in);
	VipsInterpretation target = VIPS_INTERPRETATION_sRGB;
	VipsImage *t = NULL;
	int result;

	if (!colour && (interp == VIPS_INTERPRETATION_B_W ||
		interp == VIPS_INTERPRETATION_GREY16))
		target = VIPS_INTERPRETATION_B_W;
	if (interp == target &&
		vips_image_get_format(in) == VIPS_FORMAT_UCHAR) {
		g_object_ref(in);
		*out = in;
		return 0;
	}
	/* Odd TIFFs come as "multiband" and the like: relabel, no maths. */
	if (!vips_colourspace_issupported(in)) {
		if (vips_copy(in, &t, "interpretation",
			vips_image_get_bands(in) >= 3 ?
				VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W,
			NULL))
			return -1;
	}
	else if (vips_colourspace(in, &t, target, NULL))
		return -1;
	result = vips_cast(t, out, VIPS_FORMAT_UCHAR, NULL);
	g_object_unref(t);
	return result;
}

int
ip_to_bw(VipsImage *in, VipsImage **out)
{
	return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, NULL);
}

int
ip_flatten(VipsImage *in, double r, double g, double b, VipsImage **out)
{
	double bg[3] = { r, g, b };
	int n = vips_image_get_bands(in) >= 4 ? 3 : 1;
	VipsArrayDouble *background;
	VipsImage *t = NULL;
	int result;

	if (n == 1)
		bg[0] = 0.2126 * r + 0.7152 * g + 0.0722 * b;
	background = vips_array_double_new(bg, n);
	result = vips_flatten(in, &t, "background", background, NULL);
	vips_area_unref(VIPS_AREA(background));
	if (result)
		return -1;
	result = vips_cast(t, out, VIPS_FORMAT_UCHAR, NULL);
	g_object_unref(t);
	return result;
}

int
ip_add_alpha(VipsImage *in, VipsImage **out)
{
	if (vips_image_hasalpha(in)) {
		g_object_ref(in);
		*out = in;
		return 0;
	}
	return vips_addalpha(in, out, NULL);
}

/* Multiply the alpha band (the last one) by factor. */
int
ip_scale_alpha(VipsImage *in, double factor, VipsImage **out)
{
	int bands = vips_image_get_bands(in);
	double a[16], b[16];
	VipsImage *t = NULL;
	int result;

	if (bands > 16) {
		vips_error("imgpipe", "too many bands");
		return -1;
	}
	for (int i = 0; i < bands; i++) {
		a[i] = i == bands - 1 ? factor : 1.0;
		b[i] = 0.0;
	}
	if (vips_linear(in, &t, a, b, bands, NULL))
		return -1;
	result = vips_cast(t, out, VIPS_FORMAT_UCHAR, NULL);
	g_object_unref(t);
	return result;
}

/* Composite overlay (RGBA) over base at x,y; the result keeps the base's
 * alpha-ness: a base without alpha comes back without it. */
int
ip_composite_over(VipsImage *base, VipsImage *overlay, int x, int y,
	VipsImage **out)
{
	gboolean base_alpha = vips_image_hasalpha(base);
	VipsImage *t[2] = { NULL, NULL };
	int result = -1;

	if (vips_composite2(base, overlay, &t[0], VIPS_BLEND_MODE_OVER,
		"x", x, "y", y, NULL))
		goto done;
	if (base_alpha) {
		result = vips_cast(t[0], out, VIPS_FORMAT_UCHAR, NULL);
		goto done;
	}
	if (vips_cast(t[0], &t[1], VIPS_FORMAT_UCHAR, NULL))
		goto done;
	result = vips_extract_band(t[1], out, 0,
		"n", vips_image_get_bands(t[1]) - 1, NULL);
done:
	for (int i = 0; i < 2; i++)
		if (t[i])
			g_object_unref(t[i]);
	return result;
}

int
ip_replicate(VipsImage *in, int across, int down, VipsImage **out)
{
	return vips_replicate(in, out, across, down, NULL);
}

/* A one-band mask of the text, at font_px pixels (72 dpi: 1pt = 1px). The
 * text is escaped: vips_text takes Pango markup. */
int
ip_text_mask(const char *text, int font_px, VipsImage **out)
{
	char *escaped = g_markup_escape_text(text, -1);
	char *font = g_strdup_printf("sans bold %d", font_px);
	int result = vips_text(out, escaped, "font", font, "dpi", 72, NULL);

	g_free(escaped);
	g_free(font);
	return result;
}

/* White text with a soft dark outline, so it reads on any background:
 * RGB = mask, alpha = max(mask, blurred mask * 2). */
int
ip_text_watermark(VipsImage *mask, int pad, VipsImage **out)
{
	VipsImage *t[8] = { NULL };
	double zero = 0.0;
	int result = -1;
	int w = vips_image_get_width(mask) + 2 * pad;
	int h = vips_image_get_height(mask) + 2 * pad;

	if (ip_embed(mask, pad, pad, w, h, &zero, 1, &t[0]) ||
		vips_gaussblur(t[0], &t[1], VIPS_MAX(0.8, pad / 2.0), NULL) ||
		vips_linear1(t[1], &t[2], 2.5, 0.0, NULL) ||
		vips_cast(t[2], &t[3], VIPS_FORMAT_UCHAR, NULL) ||
		vips_relational(t[0], t[3], &t[4], VIPS_OPERATION_RELATIONAL_MORE, NULL) ||
		vips_ifthenelse(t[4], t[0], t[3], &t[5], NULL))
		goto done;
	{
		VipsImage *bands[4] = { t[0], t[0], t[0], t[5] };

		if (vips_bandjoin(bands, &t[6], 4, NULL) ||
			vips_copy(t[6], out, "interpretation",
				VIPS_INTERPRETATION_sRGB, NULL))
			goto done;
	}
	result = 0;
done:
	for (int i = 0; i < 8; i++)
		if (t[i])
			g_object_unref(t[i]);
	return result;
}


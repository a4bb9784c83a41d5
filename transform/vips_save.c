/* Materialising under the kill guard, and saving (see vips_bridge.h). */
#include <string.h>
#include "vips_bridge.h"

/* ---- materialise under a kill guard ------------------------------------- */

int
ip_guard_stops(ip_guard *guard)
{
	if (guard && (g_atomic_int_get(&guard->cancel) ||
		g_get_monotonic_time() > guard->deadline)) {
		g_atomic_int_set(&guard->fired, 1);
		return 1;
	}
	return 0;
}

static void
ip_eval_cb(VipsImage *image, VipsProgress *progress, ip_guard *guard)
{
	if (ip_guard_stops(guard))
		vips_image_set_kill(image, TRUE);
}

/* Compute in into a new memory image. libvips checks the kill flag of the
 * image being computed between tiles; the eval callback raises it once the
 * guard says stop, and the write fails with "killed". */
int
ip_materialize(VipsImage *in, ip_guard *guard, VipsImage **out)
{
	VipsImage *mem = vips_image_new_memory();
	int result;

	vips_image_set_progress(mem, TRUE);
	g_signal_connect(mem, "eval", G_CALLBACK(ip_eval_cb), guard);
	result = vips_image_write(in, mem);
	g_signal_handlers_disconnect_by_data(mem, guard);
	vips_image_set_progress(mem, FALSE);
	if (result) {
		g_object_unref(mem);
		return -1;
	}
	*out = mem;
	return 0;
}

void
ip_guard_cancel(ip_guard *guard)
{
	g_atomic_int_set(&guard->cancel, 1);
}

int
ip_guard_fired(ip_guard *guard)
{
	return g_atomic_int_get(&guard->fired);
}

/* ---- saving ------------------------------------------------------------- */

int
ip_save(VipsImage *in, ip_save_options *o, void **buf, size_t *len)
{
	switch (o->format) {
	case IP_JPEG:
		return vips_jpegsave_buffer(in, buf, len, "Q", o->quality,
			"interlace", o->progressive, "strip", o->strip, NULL);
	case IP_PNG:
		/* Every row filtered as suits it best: libvips' default, no
		 * filter, made photos' PNGs about twice the size, for about half
		 * the encoding time. Results are kept for good. */
		return vips_pngsave_buffer(in, buf, len, "compression", 6,
			"filter", VIPS_FOREIGN_PNG_FILTER_ALL,
			"interlace", o->progressive, "strip", o->strip, NULL);
	case IP_WEBP:
		return vips_webpsave_buffer(in, buf, len, "Q", o->quality,
			"lossless", o->lossless, "strip", o->strip, NULL);
	case IP_GIF:
		return vips_gifsave_buffer(in, buf, len, "strip", o->strip, NULL);
	case IP_TIFF:
		return vips_tiffsave_buffer(in, buf, len,
			"compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE,
			"predictor", VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL,
			"strip", o->strip, NULL);
	case IP_AVIF:
		return vips_heifsave_buffer(in, buf, len, "Q", o->quality,
			"lossless", o->lossless, "strip", o->strip,
			"compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
			"effort", 2, NULL);
	case IP_HEIF:
		return vips_heifsave_buffer(in, buf, len, "Q", o->quality,
			"lossless", o->lossless, "strip", o->strip,
			"compression", VIPS_FOREIGN_HEIF_COMPRESSION_HEVC, NULL);
	}
	vips_error("imgpipe", "cannot save format %d", o->format);
	return -1;
}

/* The progress flag and the handler go on the image to save, or, when the
 * operation cache is on and images may be shared between requests, on a
 * fresh image of our own. */
int
ip_save_guarded(VipsImage *in, ip_guard *guard, ip_save_options *o,
	void **buf, size_t *len)
{
	VipsImage *t = in;
	int result;

	if (vips_cache_get_max() > 0) {
		t = vips_image_new();
		if (vips_image_write(in, t)) {
			g_object_unref(t);
			return -1;
		}
	}
	else
		g_object_ref(t);
	vips_image_set_progress(t, TRUE);
	g_signal_connect(t, "eval", G_CALLBACK(ip_eval_cb), guard);
	result = ip_save(t, o, buf, len);
	g_signal_handlers_disconnect_by_data(t, guard);
	vips_image_set_progress(t, FALSE);
	g_object_unref(t);
	return result;
}

/* Materialising under the kill guard, and saving (see vips_bridge.h). */
#include <string.h>
#include "vips_bridge.h"

/* ---- materialise under a kill guard ------------------------------------- */

/* Whether the guard says stop; it is then fired. */
static int
ip_guard_stops(ip_guard *guard)
{
	if (g_atomic_int_get(&guard->cancel) ||
		g_get_monotonic_time() > guard->deadline) {
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

/* Output lines computed at a time by ip_materialize_here. */
#define IP_STRIP_LINES 64

/* ip_materialize on the calling thread: a region of in is computed a strip
 * of lines at a time and copied out, the guard checked between strips. A
 * sink (ip_materialize, and every encoder) runs the pixels on a worker
 * thread and hands each strip over, with semaphores, to the thread that
 * waits for it; for a small image the hand-offs cost more than the
 * pixels. Only for images whose every strip is little work: the guard can
 * stop nothing inside one. */
int
ip_materialize_here(VipsImage *in, ip_guard *guard, VipsImage **out)
{
	VipsImage *mem = vips_image_new_memory();
	VipsRegion *region = NULL;
	size_t line = VIPS_IMAGE_SIZEOF_LINE(in);
	int y, i;

	if (vips_image_pio_input(in) ||
		vips_image_pipelinev(mem, VIPS_DEMAND_STYLE_THINSTRIP, in, NULL) ||
		vips_image_write_prepare(mem) ||
		!(region = vips_region_new(in)))
		goto fail;
	for (y = 0; y < in->Ysize; y += IP_STRIP_LINES) {
		VipsRect strip = { 0, y, in->Xsize, VIPS_MIN(IP_STRIP_LINES, in->Ysize - y) };

		if (ip_guard_stops(guard)) {
			vips_error("imgpipe", "%s", "killed");
			goto fail;
		}
		if (vips_region_prepare(region, &strip))
			goto fail;
		for (i = 0; i < strip.height; i++)
			memcpy(VIPS_IMAGE_ADDR(mem, 0, y + i),
				VIPS_REGION_ADDR(region, 0, y + i), line);
	}
	g_object_unref(region);
	*out = mem;
	return 0;

fail:
	if (region)
		g_object_unref(region);
	g_object_unref(mem);
	return -1;
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

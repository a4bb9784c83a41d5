/* The C side of the libvips bridge: thin non-variadic wrappers (cgo cannot
 * call variadic functions), the GLib log routing and the kill guard. Every
 * function returning int gives 0 on success, -1 with the vips error buffer
 * filled on failure; output images are new references the caller unrefs. */
#ifndef IMGPIPE_VIPS_BRIDGE_H
#define IMGPIPE_VIPS_BRIDGE_H

#include <stdlib.h>
#include <vips/vips.h>

/* Input formats, same order as the Go constants. */
enum ip_format {
	IP_UNKNOWN = 0,
	IP_JPEG, IP_PNG, IP_WEBP, IP_GIF, IP_TIFF, IP_AVIF, IP_HEIF, IP_SVG, IP_PDF
};

int ip_startup(void);
int ip_malloc_arenas(void);
int ip_vector_enabled(void);
int ip_vector_is_orc(void); /* this libvips vectorises with ORC */
void ip_configure(int concurrency, int cache_ops);
void ip_allow_vector(int svg, int pdf);
char *ip_error(void); /* copy of the error buffer, cleared; free() it */
void ip_unref(VipsImage *im);
void ip_thread_done(void);

/* Loading. n_all asks for every page (animations). */
int ip_header(const void *buf, size_t len, int format, VipsImage **out);
int ip_load(const void *buf, size_t len, int format, int n_all, int shrink, VipsImage **out);
int ip_thumbnail_buffer(const void *buf, size_t len, int n_all, int width, int height, int size, int icc, VipsImage **out);
int ip_thumbnail_image(VipsImage *in, int width, int height, int size, int icc, VipsImage **out);
int ip_is_plain(VipsImage *in);
int ip_resize_by(VipsImage *in, double hshrink, double vshrink, VipsImage **out);

/* Metadata. */
int ip_width(VipsImage *im);
int ip_height(VipsImage *im);
int ip_bands(VipsImage *im);
int ip_band_format(VipsImage *im);
int ip_sample_size(VipsImage *im);
int ip_page_height(VipsImage *im);
int ip_n_pages(VipsImage *im);
int ip_orientation(VipsImage *im);
int ip_has_alpha(VipsImage *im);
const char *ip_interpretation(VipsImage *im);
const void *ip_blob(VipsImage *im, const char *name, size_t *len);
int ip_has_icc(VipsImage *im);
int ip_set_page_height(VipsImage *in, int page_height, VipsImage **out);
int ip_reset_orientation(VipsImage *in, VipsImage **out);

/* Pixel operations. */
int ip_extract_area(VipsImage *in, int left, int top, int width, int height, VipsImage **out);
int ip_arrayjoin(VipsImage **in, int n, VipsImage **out);
int ip_embed(VipsImage *in, int x, int y, int width, int height, double *bg, int nbg, VipsImage **out);
int ip_rot(VipsImage *in, int angle, VipsImage **out);
int ip_flip(VipsImage *in, int horizontal, VipsImage **out);
int ip_gaussblur(VipsImage *in, double sigma, VipsImage **out);
int ip_sharpen(VipsImage *in, double sigma, VipsImage **out);
int ip_smartcrop(VipsImage *in, int width, int height, int entropy, VipsImage **out);
int ip_to_srgb8(VipsImage *in, int colour, VipsImage **out);
int ip_to_bw(VipsImage *in, VipsImage **out);
int ip_flatten(VipsImage *in, double r, double g, double b, VipsImage **out);
int ip_add_alpha(VipsImage *in, VipsImage **out);
int ip_scale_alpha(VipsImage *in, double factor, VipsImage **out);
int ip_composite_over(VipsImage *base, VipsImage *overlay, int x, int y, VipsImage **out);
int ip_replicate(VipsImage *in, int across, int down, VipsImage **out);
int ip_resize(VipsImage *in, double scale, VipsImage **out);
int ip_text_mask(const char *text, int font_px, VipsImage **out);
int ip_text_watermark(VipsImage *mask, int pad, VipsImage **out);

/* Materialise into memory, interruptible: guard->cancel set to 1 or the
 * monotonic deadline (microseconds) passing kills the computation, and
 * sets fired: a failure after that is the guard's, whatever libvips says
 * (a loader cut off mid-read may report a read error, not "killed"). */
typedef struct {
	volatile gint cancel;
	gint64 deadline;
	volatile gint fired;
} ip_guard;
int ip_materialize(VipsImage *in, ip_guard *guard, VipsImage **out);
void ip_guard_cancel(ip_guard *guard);
int ip_guard_fired(ip_guard *guard);
/* ip_guard_stops checks the guard (NULL: never stops) and, when it says
 * stop, sets fired: for the C loops that check it themselves. */
int ip_guard_stops(ip_guard *guard);

/* ip_jpeg_decode decodes a JPEG with libjpeg straight into a memory image,
 * scaled by eighths/8 in the DCT domain (libjpeg scales by any eighth;
 * libvips' loader by 1/2, 1/4 and 1/8 only), under the guard: -1 when the
 * guard fired. On a small image it costs a third less than libvips' lazy
 * loader (docs/transform.md). It declines, returning 0 with *out NULL,
 * what it leaves to libvips: CMYK and YCCK, a decoded size over
 * max_bytes, and any file libjpeg warns about or fails on (truncated,
 * corrupt), so that libvips' rules decide those as before. icc attaches
 * the embedded profile. */
int ip_jpeg_decode(const void *buf, size_t len, int eighths, int icc, size_t max_bytes, ip_guard *guard, VipsImage **out);

/* ip_reduce_memory reduces an image held in memory (ip_jpeg_decode's) by
 * lanczos3, as ip_resize_by would, on the calling thread in vectorised
 * passes (resample.c), under the guard: -1 when the guard fired. It
 * declines, returning 0 with *out NULL, anything but 8-bit grey or RGB in
 * memory, enlarging, factors that leave libvips a box filter to apply
 * first (an axis four times smaller or more), and a reduction it has no
 * memory for. */
int ip_reduce_memory(VipsImage *in, double hshrink, double vshrink, ip_guard *guard, VipsImage **out);

/* Saving. */
typedef struct {
	int format;
	int quality;
	int lossless;
	int progressive;
	int strip;
} ip_save_options;
int ip_save(VipsImage *in, ip_save_options *opts, void **buf, size_t *len);
/* ip_save under the guard: the encoder pulls the pixels through the whole
 * lazy pipeline, so a load and resize left unmaterialised are
 * interruptible as well. */
int ip_save_guarded(VipsImage *in, ip_guard *guard, ip_save_options *opts, void **buf, size_t *len);
void ip_free(void *p);

#endif

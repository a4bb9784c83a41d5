/* Lanczos3 reduction of an 8-bit image held in memory, on the calling
 * thread (see vips_bridge.h, ip_reduce_memory).
 *
 * libvips 8.14's reducev and reduceh run scalar C loops (its ORC path is
 * off: vips_startup.c), and on the bench's small images they were a third
 * of the engine's CPU. Here the same filter is two passes of one loop that
 * the compiler vectorises: a vertical pass adds whole rows, each scaled by
 * one weight; the horizontal pass is the vertical one again, on the image
 * transposed. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "vips_bridge.h"

/* Weights are fixed point with this many fraction bits: 16-bit weights,
 * 32-bit sums (255 times the sum of a kernel's absolute weights, about
 * 1.3, stays far inside). */
#define IP_WEIGHT_SHIFT 14
#define IP_WEIGHT_ONE (1 << IP_WEIGHT_SHIFT)

/* The taps of one axis: output i reads input first[i] + k, clamped to the
 * image (libvips extends the edge pixels too), with weight w[i * n + k]. */
typedef struct {
	int n;
	int *first;
	int16_t *w;
} ip_taps;

static double
ip_lanczos3(double x)
{
	if (x == 0.0)
		return 1.0;
	if (x <= -3.0 || x >= 3.0)
		return 0.0;
	return 3.0 * sin(M_PI * x) * sin(M_PI * x / 3.0) / (M_PI * M_PI * x * x);
}

/* Safe to call again: ip_taps_make frees what it made when it fails, and
 * its caller frees every ip_taps on its way out. */
static void
ip_taps_free(ip_taps *t)
{
	g_free(t->first);
	g_free(t->w);
	t->first = NULL;
	t->w = NULL;
}

/* Output pixel i is centred on input (i + 0.5) * shrink - 0.5, less half
 * of what out_n pixels of shrink cover beyond in_n (rounding the size up
 * or down): libvips' centre convention, which spreads the difference over
 * both edges. The kernel is stretched by shrink, so it reaches 3 * shrink
 * either side. The weights of each output are normalised, then rounded
 * so that they sum to exactly one: a flat area stays exactly its value. */
static int
ip_taps_make(ip_taps *t, int in_n, int out_n, double shrink)
{
	double support = 3.0 * shrink;
	double offset = (out_n * shrink - in_n) / 2.0;
	double *f;
	int i, k;

	t->n = (int) ceil(2.0 * support) + 1;
	t->first = g_try_new(int, out_n);
	t->w = g_try_new(int16_t, (size_t) out_n * t->n);
	f = g_try_new(double, t->n);
	if (!t->first || !t->w || !f) {
		g_free(f);
		ip_taps_free(t);
		return -1;
	}
	for (i = 0; i < out_n; i++) {
		double centre = (i + 0.5) * shrink - 0.5 - offset;
		int first = (int) ceil(centre - support);
		double sum = 0.0;
		int total = 0, peak = 0;
		int16_t *w = t->w + (size_t) i * t->n;

		for (k = 0; k < t->n; k++) {
			f[k] = ip_lanczos3((first + k - centre) / shrink);
			sum += f[k];
		}
		for (k = 0; k < t->n; k++) {
			w[k] = (int16_t) lrint(f[k] / sum * IP_WEIGHT_ONE);
			total += w[k];
			if (w[k] > w[peak])
				peak = k;
		}
		w[peak] += IP_WEIGHT_ONE - total;
		t->first[i] = first;
	}
	g_free(f);
	return 0;
}

/* On x86 with glibc the row loop is built twice, for AVX2 and for the
 * baseline, and the loader picks one for the machine (an ifunc). Other
 * machines (ARM's NEON is baseline there) and libcs without ifuncs get
 * the one build. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GLIBC__)
#define IP_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define IP_VECTOR_CLONES
#endif

/* One output row: the sum of n input rows, each times its weight, over
 * len bytes. This loop is where the time goes. */
IP_VECTOR_CLONES
static void
ip_reduce_row(const uint8_t *const *rows, const int16_t *w, int n, int len,
	int32_t *acc, uint8_t *out)
{
	int i, k;

	for (i = 0; i < len; i++)
		acc[i] = IP_WEIGHT_ONE / 2;
	for (k = 0; k < n; k++) {
		const uint8_t *restrict r = rows[k];
		int32_t c = w[k];

		if (c == 0)
			continue;
		for (i = 0; i < len; i++)
			acc[i] += c * r[i];
	}
	for (i = 0; i < len; i++) {
		int32_t v = acc[i] >> IP_WEIGHT_SHIFT;

		out[i] = (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

/* Reduce the in_rows rows of stride bytes in src to the rows of taps,
 * into dst. */
static int
ip_reduce_rows(const uint8_t *src, int in_rows, size_t stride, ip_taps *t,
	int out_rows, uint8_t *dst, ip_guard *g)
{
	const uint8_t **rows = g_try_new(const uint8_t *, t->n);
	int32_t *acc = g_try_new(int32_t, stride);
	int i, k;

	if (!rows || !acc) {
		g_free(rows);
		g_free(acc);
		return -1;
	}
	for (i = 0; i < out_rows; i++) {
		const int16_t *w = t->w + (size_t) i * t->n;

		if (i % 64 == 0 && ip_guard_stops(g)) {
			g_free(rows);
			g_free(acc);
			return -1;
		}
		for (k = 0; k < t->n; k++) {
			int y = VIPS_CLIP(0, t->first[i] + k, in_rows - 1);

			rows[k] = src + (size_t) y * stride;
		}
		ip_reduce_row(rows, w, t->n, (int) stride, acc, dst + (size_t) i * stride);
	}
	g_free(rows);
	g_free(acc);
	return 0;
}

/* dst (width rows of height pixels) is src (height rows of width
 * pixels) transposed, in blocks that stay in cache. */
static void
ip_transpose(const uint8_t *src, int width, int height, int bands,
	uint8_t *dst)
{
	const int B = 32;
	int x0, y0, x, y;

	for (y0 = 0; y0 < height; y0 += B)
		for (x0 = 0; x0 < width; x0 += B) {
			int x1 = VIPS_MIN(x0 + B, width), y1 = VIPS_MIN(y0 + B, height);

			if (bands == 3)
				for (y = y0; y < y1; y++)
					for (x = x0; x < x1; x++) {
						const uint8_t *s = src + ((size_t) y * width + x) * 3;
						uint8_t *d = dst + ((size_t) x * height + y) * 3;

						d[0] = s[0];
						d[1] = s[1];
						d[2] = s[2];
					}
			else
				for (y = y0; y < y1; y++)
					for (x = x0; x < x1; x++)
						dst[(size_t) x * height + y] = src[(size_t) y * width + x];
		}
}

static void
ip_free_reduced(VipsImage *im, void *pixels)
{
	g_free(pixels);
}

/* The reduction by vshrink (rows), then hshrink (columns, on the
 * transposed image). Each pass runs when its factor is above one, as
 * libvips runs reducev or reduceh then, even if the size stays: the
 * kernel, stretched a little, still filters. Scratch buffers are freed as
 * soon as they are read: at most three images are held, the input
 * included. NULL when the guard fired or memory ran out. */
static uint8_t *
ip_reduce_pixels(const uint8_t *src, int iw, int ih, int bands, int ow,
	int oh, double hshrink, double vshrink, ip_guard *g)
{
	ip_taps v = { 0 }, h = { 0 };
	uint8_t *rows = NULL, *across = NULL, *reduced = NULL, *out = NULL;
	const uint8_t *cur = src;

	if (vshrink > 1.0) {
		if (ip_taps_make(&v, ih, oh, vshrink) ||
			!(rows = g_try_malloc((size_t) iw * oh * bands)) ||
			ip_reduce_rows(src, ih, (size_t) iw * bands, &v, oh, rows, g))
			goto done;
		cur = rows;
	}
	if (hshrink > 1.0) {
		if (ip_taps_make(&h, iw, ow, hshrink) ||
			!(across = g_try_malloc((size_t) iw * oh * bands)))
			goto done;
		ip_transpose(cur, iw, oh, bands, across);
		g_free(rows);
		rows = NULL;
		if (!(reduced = g_try_malloc((size_t) ow * oh * bands)) ||
			ip_reduce_rows(across, iw, (size_t) oh * bands, &h, ow, reduced, g))
			goto done;
		g_free(across);
		across = NULL;
		if (ip_guard_stops(g) ||
			!(out = g_try_malloc((size_t) ow * oh * bands)))
			goto done;
		ip_transpose(reduced, oh, ow, bands, out);
	}
	else {
		out = rows;
		rows = NULL;
	}
done:
	ip_taps_free(&v);
	ip_taps_free(&h);
	g_free(rows);
	g_free(across);
	g_free(reduced);
	return out;
}

int
ip_reduce_memory(VipsImage *in, double hshrink, double vshrink,
	ip_guard *guard, VipsImage **out)
{
	int bands = in->Bands, ow, oh;
	uint8_t *pixels;
	VipsImage *im;

	*out = NULL;
	/* A decoded image in memory, 8-bit grey or RGB, reduced: anything
	 * else is ip_resize_by's. */
	if ((in->dtype != VIPS_IMAGE_SETBUF &&
		in->dtype != VIPS_IMAGE_SETBUF_FOREIGN) || !in->data ||
		in->Coding != VIPS_CODING_NONE ||
		in->BandFmt != VIPS_FORMAT_UCHAR || (bands != 1 && bands != 3) ||
		hshrink < 1.0 || vshrink < 1.0 ||
		(hshrink == 1.0 && vshrink == 1.0))
		return 0;
	/* Capped and sized as ip_resize_by and libvips cap and size a
	 * reduction, through the same arithmetic: ip_resize_by hands libvips
	 * the inverse of a scale, and a size landing on half a pixel rounds
	 * by the last bit of that. From four times smaller on an axis (twice
	 * ip_resize_by's gap of 2), libvips averages blocks of pixels before
	 * its lanczos: that is its, too. */
	hshrink = 1.0 / VIPS_MAX(1.0 / hshrink, 1.0 / in->Xsize);
	vshrink = 1.0 / VIPS_MAX(1.0 / vshrink, 1.0 / in->Ysize);
	ow = VIPS_MAX(1, VIPS_ROUND_UINT(in->Xsize / hshrink));
	oh = VIPS_MAX(1, VIPS_ROUND_UINT(in->Ysize / vshrink));
	if (in->Xsize >= 4 * ow || in->Ysize >= 4 * oh)
		return 0;

	pixels = ip_reduce_pixels((const uint8_t *) in->data, in->Xsize,
		in->Ysize, bands, ow, oh, hshrink, vshrink, guard);
	if (!pixels && guard && g_atomic_int_get(&guard->fired)) {
		vips_error("imgpipe", "killed");
		return -1;
	}
	/* Out of memory: libvips, which holds a few lines at a time, may
	 * manage. */
	if (!pixels)
		return 0;
	im = vips_image_new_from_memory(pixels, (size_t) ow * oh * bands,
		ow, oh, bands, VIPS_FORMAT_UCHAR);
	if (!im) {
		g_free(pixels);
		return -1;
	}
	g_signal_connect(im, "postclose", G_CALLBACK(ip_free_reduced), pixels);
	im->Type = in->Type;
	im->Xres = in->Xres;
	im->Yres = in->Yres;
	*out = im;
	return 0;
}

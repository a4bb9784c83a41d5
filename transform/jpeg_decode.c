/* JPEGs decoded straight into memory by libjpeg, at any of its DCT scales
 * (see vips_bridge.h, ip_jpeg_decode). */
#include <setjmp.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include "vips_bridge.h"

/* libjpeg reports through its error manager; ours jumps back to
 * ip_jpeg_decode on an error, on any warning (a truncated or corrupt
 * file: libvips' loader then decides, by its own rules, as for every
 * other image), and when the guard says stop. */
typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jmp;
	ip_guard *guard;
	int killed;
} ip_jpeg_errors;

static void
ip_jpeg_error_exit(j_common_ptr c)
{
	longjmp(((ip_jpeg_errors *) c->err)->jmp, 1);
}

static void
ip_jpeg_emit_message(j_common_ptr c, int level)
{
	if (level < 0)
		longjmp(((ip_jpeg_errors *) c->err)->jmp, 1);
}

/* libjpeg calls the progress monitor between rows and, for progressive
 * files, between the scans it absorbs before the first row: the same
 * points at which libvips checks its kill flag between tiles. */
static void
ip_jpeg_progress(j_common_ptr c)
{
	ip_jpeg_errors *e = (ip_jpeg_errors *) c->err;

	if (ip_guard_stops(e->guard)) {
		e->killed = 1;
		longjmp(e->jmp, 1);
	}
}

static void
ip_free_pixels(VipsImage *im, void *pixels)
{
	g_free(pixels);
}

/* The JFIF density in libvips' pixels per millimetre, as its loader reads
 * it: a unit of 0 gives only the pixels' aspect ratio, and 1 (or none)
 * leaves libvips' default. */
static void
ip_jpeg_resolution(struct jpeg_decompress_struct *c, VipsImage *im)
{
	double per_mm = c->density_unit == 1 ? 25.4 : 10.0;

	if (!c->saw_JFIF_marker || c->density_unit < 1 || c->density_unit > 2 ||
		c->X_density <= 1 || c->Y_density <= 1)
		return;
	im->Xres = c->X_density / per_mm;
	im->Yres = c->Y_density / per_mm;
}

int
ip_jpeg_decode(const void *buf, size_t len, int eighths, int icc,
	size_t max_bytes, ip_guard *guard, VipsImage **out)
{
	struct jpeg_decompress_struct c;
	struct jpeg_progress_mgr progress = { .progress_monitor = ip_jpeg_progress };
	ip_jpeg_errors errors = { .guard = guard };
	/* Written after setjmp and read after the jump: volatile. */
	unsigned char *volatile pixels = NULL;
	JOCTET *volatile profile = NULL;
	unsigned int profile_len = 0;
	size_t stride, size;
	int bands;
	VipsImage *im;

	*out = NULL;
	c.err = jpeg_std_error(&errors.pub);
	errors.pub.error_exit = ip_jpeg_error_exit;
	errors.pub.emit_message = ip_jpeg_emit_message;
	if (setjmp(errors.jmp)) {
		jpeg_destroy_decompress(&c);
		g_free(pixels);
		free(profile);
		if (errors.killed) {
			vips_error("imgpipe", "killed");
			return -1;
		}
		return 0;
	}
	jpeg_create_decompress(&c);
	c.progress = &progress;
	jpeg_mem_src(&c, (const unsigned char *) buf, len);
	if (icc)
		jpeg_save_markers(&c, JPEG_APP0 + 2, 0xFFFF);
	jpeg_read_header(&c, TRUE);

	/* CMYK and YCCK need libvips' inversion and profile handling. */
	switch (c.jpeg_color_space) {
	case JCS_GRAYSCALE:
		c.out_color_space = JCS_GRAYSCALE;
		bands = 1;
		break;
	case JCS_YCbCr:
	case JCS_RGB:
		c.out_color_space = JCS_RGB;
		bands = 3;
		break;
	default:
		jpeg_destroy_decompress(&c);
		return 0;
	}
	c.scale_num = eighths;
	c.scale_denom = 8;
	jpeg_calc_output_dimensions(&c);
	stride = (size_t) c.output_width * bands;
	size = stride * c.output_height;
	if (size > max_bytes) {
		jpeg_destroy_decompress(&c);
		return 0;
	}
	if (icc) {
		JOCTET *p = NULL;

		if (jpeg_read_icc_profile(&c, &p, &profile_len))
			profile = p;
	}

	jpeg_start_decompress(&c);
	if (!(pixels = g_try_malloc(size)))
		longjmp(errors.jmp, 1);
	while (c.output_scanline < c.output_height) {
		JSAMPROW rows[16];
		int i, n = VIPS_MIN(c.rec_outbuf_height, 16);

		for (i = 0; i < n; i++)
			rows[i] = pixels + (size_t) VIPS_MIN(c.output_scanline + i,
				c.output_height - 1) * stride;
		jpeg_read_scanlines(&c, rows, n);
	}
	jpeg_finish_decompress(&c);

	im = vips_image_new_from_memory(pixels, size, c.output_width,
		c.output_height, bands, VIPS_FORMAT_UCHAR);
	if (!im)
		longjmp(errors.jmp, 1);
	g_signal_connect(im, "postclose", G_CALLBACK(ip_free_pixels), pixels);
	pixels = NULL;
	im->Type = bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
	ip_jpeg_resolution(&c, im);
	if (profile) {
		vips_image_set_blob_copy(im, VIPS_META_ICC_NAME, profile, profile_len);
		free(profile);
	}
	jpeg_destroy_decompress(&c);
	*out = im;
	return 0;
}

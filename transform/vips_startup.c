/* libvips start-up, settings, errors and GLib log routing (see
 * vips_bridge.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vips_bridge.h"
#include <vips/vector.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include "_cgo_export.h"

/* ---- logging ------------------------------------------------------------ */

/* GLib messages from libvips and the libraries under it (libjpeg warnings
 * such as "Premature end of JPEG file" arrive as g_warning in domain VIPS)
 * go to Go's slog instead of stderr. Info and debug are libvips' tracing
 * ("residual reduceh by ..."), emitted by every operation: GLib's default
 * handler hides them unless G_MESSAGES_DEBUG is set, so they are dropped
 * here before paying for a Go call. */
#define IP_FORWARDED (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | \
	G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE)

static void
ip_log_handler(const gchar *domain, GLogLevelFlags level,
	const gchar *message, gpointer user_data)
{
	if (!(level & IP_FORWARDED))
		return;
	goVipsLog((char *) (domain ? domain : ""), (int) level,
		(char *) (message ? message : ""));
}

/* Structured GLib logging (g_log_structured) bypasses handlers set with
 * g_log_set_handler, so route the writer too. */
static GLogWriterOutput
ip_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
	gpointer user_data)
{
	const char *domain = "";
	const char *message = "";
	gsize i;

	if (!(level & IP_FORWARDED))
		return G_LOG_WRITER_HANDLED;
	for (i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
			domain = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
			message = fields[i].value;
	}
	goVipsLog((char *) domain, (int) level, (char *) message);
	return G_LOG_WRITER_HANDLED;
}

/* Loaders we sniff for ourselves; every other loader stays blocked so that
 * no byte sequence can reach ImageMagick, matio, FITS and the like. SVG and
 * PDF are unblocked by ip_allow_vector when a config allows them. */
static const char *ip_loaders[] = {
	"VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp",
	"VipsForeignLoadNsgif", "VipsForeignLoadTiff", "VipsForeignLoadHeif",
	NULL
};

/* glibc gives threads that allocate at once arenas of their own, up to
 * eight per core, and an arena keeps what was freed in it: after a few
 * large renders on libvips' worker threads, an idle process stayed at
 * 3 GB. Two arenas, as MALLOC_ARENA_MAX=2 asks, keep RSS near what is in
 * use for the same speed (docs/transform.md, Memory). Set here so that a
 * plain `imgpipe` has it; the variable, when set, is left to decide, and
 * another allocator (jemalloc, preloaded) has no use for it. glibc fixes
 * its arena limit when a second thread first allocates, which Go's threads
 * do before any Go code runs: hence a constructor, run as the program
 * loads. */
__attribute__((constructor)) static void
ip_limit_arenas(void)
{
#ifdef M_ARENA_MAX
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
#endif
}

/* ip_malloc_arenas counts glibc's arenas (malloc_info's heaps); -1 where
 * that cannot be read. */
int
ip_malloc_arenas(void)
{
#ifdef __GLIBC__
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int n = 0;
	const char *p;

	if (!f)
		return -1;
	if (malloc_info(0, f)) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	for (p = buf; (p = strstr(p, "<heap nr=")); p++)
		n++;
	free(buf);
	return n;
#else
	return -1;
#endif
}

int
ip_startup(void)
{
	int i;

	if (VIPS_INIT("imgpipe"))
		return -1;
	g_log_set_default_handler(ip_log_handler, NULL);
	g_log_set_handler("VIPS", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL |
		G_LOG_FLAG_RECURSION, ip_log_handler, NULL);
	g_log_set_writer_func(ip_log_writer, NULL, NULL);

	/* No ORC: libvips 8.14 compiles an ORC program for every reducev,
	 * reduceh and convolution it builds, and frees it with the
	 * operation; with liborc 0.4.33 (both are Debian 12's) a compile on
	 * one thread racing a free on another corrupts orc's list of code
	 * chunks. Eight threads resizing at once crashed a plain C loop in 2
	 * of 5 runs (SIGSEGV in orc_code_allocate_codemem); a transform
	 * worker of `imgpipe dev` crashed so now and then, or glibc aborted
	 * on its corrupted heap. Without ORC libvips runs its C loops, about
	 * 5% slower on the bench's small and large images alike. From 8.15
	 * libvips vectorises with Highway instead, which the switch would
	 * turn off for nothing. */
	if (ip_vector_is_orc())
		vips_vector_set_enabled(FALSE);

	vips_block_untrusted_set(TRUE);
	vips_operation_block_set("VipsForeignLoad", TRUE);
	for (i = 0; ip_loaders[i]; i++)
		vips_operation_block_set(ip_loaders[i], FALSE);
	return 0;
}

void
ip_allow_vector(int svg, int pdf)
{
	if (svg)
		vips_operation_block_set("VipsForeignLoadSvg", FALSE);
	if (pdf)
		vips_operation_block_set("VipsForeignLoadPdf", FALSE);
}

void
ip_configure(int concurrency, int cache_ops)
{
	vips_concurrency_set(concurrency);
	vips_cache_set_max(cache_ops);
	vips_cache_set_max_mem(cache_ops > 0 ? 64 * 1024 * 1024 : 0);
	vips_cache_set_max_files(cache_ops > 0 ? 20 : 0);
	/* Not vips_cache_drop_all(): in 8.14 it frees the cache table itself
	 * and is only for shutdown. Lowering the maximum trims the cache. */
}

char *
ip_error(void)
{
	char *copy = vips_error_buffer_copy();
	char *out = strdup(copy ? copy : "");

	g_free(copy);
	return out;
}

void
ip_unref(VipsImage *im)
{
	if (im)
		g_object_unref(im);
}

void
ip_thread_done(void)
{
	vips_error_clear();
	vips_thread_shutdown();
}

void
ip_free(void *p)
{
	g_free(p);
}

int
ip_vector_enabled(void)
{
	return vips_vector_isenabled();
}

int
ip_vector_is_orc(void)
{
	return vips_version(0) == 8 && vips_version(1) < 15;
}

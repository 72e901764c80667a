/* Attack suite: a real open-hook-server process, hostile requests. */
#include "harness.h"
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char standard_policy[] =
	"# the scratch tree\n"
	"ro     @D@/images/base.qcow2\n"
	"rw     @D@/images/vm1.qcow2\n"
	"create @D@/images/vm1/snap/\n"
	"ro     @D@/images/vm1/\n"
	"deny   @D@/images/vm1/secret\n"
	"dirs   @D@/images/vm1/snap/\n"
	"dev    /dev/null\n";

static void assert_refused(const struct broker *b, const char *rel, uint32_t flags,
			   int32_t expected)
{
	int fd;
	int32_t r = tree_open(b, rel, flags, &fd);

	if (r != expected)
		g_error("%s (flags 0%o): got %d, expected %d", rel, flags, r, expected);
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st.st_ino;
}

static ino_t tree_inode(const struct broker *b, const char *rel)
{
	char *p = path_in(b->dir, rel);
	ino_t ino = inode_of(p);

	g_free(p);
	return ino;
}

/* Opens through the broker and checks which file came back. */
static void assert_opens(const struct broker *b, const char *rel, uint32_t flags,
			 const char *expected_rel)
{
	struct stat st;
	int fd;
	int32_t r = tree_open(b, rel, flags, &fd);

	if (r != 0)
		g_error("%s (flags 0%o): refused with %d", rel, flags, r);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	g_assert_cmpuint(st.st_ino, ==, tree_inode(b, expected_rel));
	close(fd);
}

static void tree_symlink(const struct broker *b, const char *target, const char *rel)
{
	char *p = path_in(b->dir, rel);

	g_assert_cmpint(symlink(target, p), ==, 0);
	g_free(p);
}

static void test_allowed_basics(void)
{
	struct broker b;

	broker_start(&b, standard_policy);
	assert_opens(&b, "images/base.qcow2", O_RDONLY | O_CLOEXEC, "images/base.qcow2");
	assert_opens(&b, "images/vm1.qcow2", O_RDWR | O_CLOEXEC | O_DIRECT | O_DSYNC,
		     "images/vm1.qcow2");
	assert_opens(&b, "images/vm1/disk.img", O_RDONLY | 0100000 | O_NOCTTY | O_NONBLOCK,
		     "images/vm1/disk.img");
	assert_opens(&b, "images/vm1/snap", O_RDONLY | O_DIRECTORY, "images/vm1/snap");
	/* only under dirs: a directory descriptor reaches past deny rules */
	assert_refused(&b, "images/vm1", O_RDONLY | O_DIRECTORY, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "/dev/null", O_RDWR | O_CLOEXEC, &(int){ 0 }), ==, 0);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_policy_refusals(void)
{
	char *audit, *expected;
	struct broker b;

	broker_start(&b, standard_policy);
	assert_refused(&b, "images/base.qcow2", O_RDWR, -EACCES);
	assert_refused(&b, "images/base.qcow2", O_RDONLY | O_TRUNC, -EACCES);
	assert_refused(&b, "images/vm1/disk.img", O_RDONLY | O_APPEND, -EACCES);
	assert_refused(&b, "images/vm1/secret", O_RDONLY, -EACCES);
	assert_refused(&b, "outside/passwd", O_RDONLY, -EACCES);
	/* no ENOENT leak outside the policy, the real errno inside */
	assert_refused(&b, "outside/no-such-file", O_RDONLY, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "/no/such/dir/x", O_RDONLY, &(int){ 0 }), ==, -EACCES);
	assert_refused(&b, "images/vm1/no-such-file", O_RDONLY, -ENOENT);
	assert_refused(&b, "images/vm1/snap/no-such-file", O_RDWR, -ENOENT);
	assert_refused(&b, "images/vm1/snap", O_RDWR | O_DIRECTORY, -EISDIR);
	assert_refused(&b, "images/vm1/snap", O_RDONLY, -EISDIR);
	assert_refused(&b, "images/vm1/disk.img", O_RDONLY | O_DIRECTORY, -ENOTDIR);
	/* a new file needs a create rule */
	assert_refused(&b, "images/vm1/new-file", O_RDWR | O_CREAT, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "images/base.qcow2", O_RDONLY, &(int){ 0 }), ==, -EINVAL);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	/* refused before any lookup: nothing was resolved */
	audit = read_text(b.audit);
	expected = g_strdup_printf("\"path\":\"%s/outside/no-such-file\",\"resolved\":null", b.dir);
	g_assert_nonnull(strstr(audit, expected));
	g_free(expected);
	g_free(audit);
	broker_free(&b);
}

static void test_create(void)
{
	struct broker b;
	struct stat st;
	char *made;
	int fd;

	broker_start(&b, "create @D@/images/vm1/snap/\nmode 0640\nrw @D@/images/vm1.qcow2\n");
	umask(0077);    /* the broker inherits it; the policy's mode must still win */
	g_assert_cmpint(tree_open(&b, "images/vm1/snap/new.qcow2", O_RDWR | O_CREAT | O_EXCL,
				  &fd), ==, 0);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
	g_assert_true(S_ISREG(st.st_mode));
	close(fd);
	made = path_in(b.dir, "images/vm1/snap/new.qcow2");
	g_assert_cmpint(stat(made, &st), ==, 0);
	assert_refused(&b, "images/vm1/snap/new.qcow2", O_RDWR | O_CREAT | O_EXCL, -EEXIST);
	assert_opens(&b, "images/vm1/snap/new.qcow2", O_RDWR | O_CREAT, "images/vm1/snap/new.qcow2");
	assert_opens(&b, "images/vm1.qcow2", O_RDWR | O_CREAT | O_TRUNC, "images/vm1.qcow2");
	assert_refused(&b, "images/vm1/snap/missing-dir/x", O_RDWR | O_CREAT, -ENOENT);
	umask(022);
	g_free(made);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_dotdot(void)
{
	struct broker b;
	char *p;
	int fd;

	broker_start(&b, standard_policy);
	assert_refused(&b, "images/vm1/snap/../../../outside/passwd", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/../../outside/passwd", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/snap/../secret", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/snap/../../../../../../etc/shadow", O_RDONLY, -EACCES);
	assert_opens(&b, "images/vm1/snap/../disk.img", O_RDONLY, "images/vm1/disk.img");
	p = g_strdup_printf("/../../..%s/images/./vm1//disk.img", b.dir);
	g_assert_cmpint(hook_open(b.sock, p, O_RDONLY, &fd), ==, 0);
	close(fd);
	g_free(p);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_symlink_escape(void)
{
	struct broker b;
	char *outside, *root_trick;

	broker_start(&b, "ro @D@/images/vm1/\ndeny @D@/images/vm1/secret\n"
			 "ro @D@/shared/exact-link\n");
	outside = path_in(b.dir, "outside/passwd");
	root_trick = g_strdup_printf("/proc/self/root%s", outside);
	tree_symlink(&b, outside, "images/vm1/abs");
	tree_symlink(&b, "../../outside/passwd", "images/vm1/rel");
	tree_symlink(&b, "../../outside", "images/vm1/dirlink");
	tree_symlink(&b, "secret", "images/vm1/to-secret");
	tree_symlink(&b, "disk.img", "images/vm1/to-disk");
	tree_symlink(&b, root_trick, "images/vm1/magic");
	tree_symlink(&b, "/proc/self/fd/0", "images/vm1/fd0");
	tree_symlink(&b, "../images/base.qcow2", "shared/exact-link");
	assert_refused(&b, "images/vm1/abs", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/rel", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/dirlink/passwd", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/to-secret", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/magic", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/fd0", O_RDONLY, -EACCES);
	assert_refused(&b, "shared/exact-link", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/to-disk", O_RDONLY | O_NOFOLLOW, -ELOOP);
	assert_opens(&b, "images/vm1/to-disk", O_RDONLY, "images/vm1/disk.img");
	g_free(outside);
	g_free(root_trick);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_magic_links(void)
{
	struct broker b;
	int fd;

	broker_start(&b, "ro /proc/self/fd/\nro @D@/images/\n");
	g_assert_cmpint(hook_open(b.sock, "/proc/self/fd/0", O_RDONLY, &fd), ==, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "/proc/self/fd/3", O_RDONLY, &fd), ==, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "/proc/thread-self/fd/0", O_RDONLY, &fd), ==, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "/proc/1/root/etc/passwd", O_RDONLY, &fd), ==, -EACCES);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

struct swapper {
	char *link, *tmp;
	const char *targets[2];
	volatile gint stop;
	long swaps;
};

/*
 * Replaces the link atomically with the next of its two targets.
 * A target "=FILE" puts a hard link of FILE there instead of a symlink.
 */
static void swap_once(struct swapper *s)
{
	const char *target = s->targets[s->swaps & 1];
	int rc;

	unlink(s->tmp);
	rc = target[0] == '=' ? link(target + 1, s->tmp) : symlink(target, s->tmp);
	if (rc == 0 && rename(s->tmp, s->link) == 0)
		__atomic_fetch_add(&s->swaps, 1, __ATOMIC_RELAXED);
}

static gpointer swap_links(gpointer data)
{
	struct swapper *s = data;

	while (!g_atomic_int_get(&s->stop))
		swap_once(s);
	return NULL;
}

/* Requests rel many times while its meaning flips; every fd must be the inside file. */
static void race(const struct broker *b, const char *rel, const char *link_rel,
		 const char *inside_target, const char *outside_target, const char *good_rel)
{
	struct swapper s = { .targets = { inside_target, outside_target } };
	ino_t good = tree_inode(b, good_rel);
	long allowed = 0, refused = 0;
	GThread *t;

	s.link = path_in(b->dir, link_rel);
	s.tmp = g_strconcat(s.link, ".tmp", NULL);
	swap_once(&s);
	t = g_thread_new("swapper", swap_links, &s);
	/* Enough requests, and enough swaps during them, however fast each is */
	for (int i = 0; i < 5000 || (__atomic_load_n(&s.swaps, __ATOMIC_RELAXED) <= 1000 &&
				     i < 200000); i++) {
		struct stat st;
		int fd;

		if (tree_open(b, rel, O_RDONLY, &fd) != 0) {
			refused++;
			continue;
		}
		g_assert_cmpint(fstat(fd, &st), ==, 0);
		if (st.st_ino != good)
			g_error("race: %s gave inode %lu, not the inside file", rel,
				(unsigned long)st.st_ino);
		allowed++;
		close(fd);
	}
	g_atomic_int_set(&s.stop, 1);
	g_thread_join(t);
	g_test_message("%s: %ld swaps, %ld allowed, %ld refused", rel, s.swaps, allowed, refused);
	g_assert_cmpint(s.swaps, >, 1000);
	g_free(s.link);
	g_free(s.tmp);
}

static void test_symlink_race(void)
{
	struct broker b;
	char *outside, *outside_dir, *sub, *good;

	broker_start(&b, "ro @D@/images/vm1/\nro @D@/images/base.qcow2\n");
	outside = path_in(b.dir, "outside/passwd");
	outside_dir = path_in(b.dir, "outside");
	sub = path_in(b.dir, "images/vm1/realsub");
	g_assert_cmpint(mkdir(sub, 0755), ==, 0);
	g_free(sub);
	sub = path_in(b.dir, "images/vm1/realsub/passwd");
	write_text(sub, "inside");
	/* the leaf flips */
	race(&b, "images/vm1/leaf", "images/vm1/leaf", "disk.img", outside, "images/vm1/disk.img");
	/* a directory on the way flips */
	race(&b, "images/vm1/sub/passwd", "images/vm1/sub", "realsub", outside_dir,
	     "images/vm1/realsub/passwd");
	/* an exact rule's file is swapped for a symlink */
	good = g_strdup_printf("=%s/images/good-base", b.dir);
	write_text(good + 1, "good");
	race(&b, "images/base.qcow2", "images/base.qcow2", good, outside, "images/good-base");
	g_free(good);
	g_free(outside);
	g_free(outside_dir);
	g_free(sub);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void tree_mkfifo(const struct broker *b, const char *rel)
{
	char *p = path_in(b->dir, rel);

	g_assert_cmpint(mkfifo(p, 0600), ==, 0);
	g_free(p);
}

/*
 * Another process's lease makes a conflicting open wait for the lease
 * break time (45 s by default): the broker must answer at once instead,
 * or every other client would wait too.
 */
static void test_lease(void)
{
	struct broker b;
	char *image;
	int lease_fd, fd;

	broker_start(&b, standard_policy);
	image = path_in(b.dir, "images/vm1.qcow2");
	lease_fd = open(image, O_RDONLY);
	g_assert_cmpint(lease_fd, >=, 0);
	signal(SIGIO, SIG_IGN);     /* the lease holder is told of the break */
	if (fcntl(lease_fd, F_SETLEASE, F_RDLCK) < 0) {
		g_test_skip("cannot take a lease here");
	} else {
		/* hook_reply() gives up long before the lease would be broken */
		g_assert_cmpint(tree_open(&b, "images/vm1.qcow2", O_RDWR, &fd), ==,
				-EWOULDBLOCK);
		g_assert_cmpint(tree_open(&b, "images/vm1.qcow2", O_RDONLY, &fd), ==, 0);
		close(fd);
	}
	close(lease_fd);
	signal(SIGIO, SIG_DFL);
	g_free(image);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_fifo(void)
{
	struct broker b;
	int fd;

	broker_start(&b, "ro @D@/images/vm1/\ndev @D@/shared/fifo\n");
	tree_mkfifo(&b, "images/vm1/fifo");
	tree_mkfifo(&b, "shared/fifo");
	/* a broker that blocked on a FIFO would never answer: hook_reply() fails */
	assert_refused(&b, "images/vm1/fifo", O_RDONLY, -EACCES);
	/* through dev: opened without blocking, handed over blocking as asked */
	assert_refused(&b, "shared/fifo", O_WRONLY, -ENXIO);
	g_assert_cmpint(tree_open(&b, "shared/fifo", O_RDONLY, &fd), ==, 0);
	g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, 0);
	close(fd);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_device_node(void)
{
	struct broker b;
	char *node;
	int fd;

	broker_start(&b, "ro @D@/images/vm1/\nrw @D@/images/node\ndev /dev/null\n"
			 "dev @D@/images/vm1.qcow2\n");
	node = path_in(b.dir, "images/vm1/null");
	g_assert_cmpint(mknod(node, S_IFCHR | 0600, makedev(1, 3)), ==, 0);
	g_free(node);
	node = path_in(b.dir, "images/node");
	g_assert_cmpint(mknod(node, S_IFCHR | 0600, makedev(1, 3)), ==, 0);
	g_free(node);
	assert_refused(&b, "images/vm1/null", O_RDONLY, -EACCES);
	assert_refused(&b, "images/node", O_RDWR, -EACCES);
	/* dev is for device nodes only, not for regular files */
	assert_refused(&b, "images/vm1.qcow2", O_RDWR, -EACCES);
	g_assert_cmpint(hook_open(b.sock, "/dev/null", O_RDWR, &fd), ==, 0);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	close(fd);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_hardlink(void)
{
	struct broker b;
	char *outside, *inside;

	broker_start(&b, "ro @D@/images/vm1/\ncreate @D@/images/vm1/snap/\nro @D@/shared/exact\n");
	outside = path_in(b.dir, "outside/passwd");
	inside = path_in(b.dir, "images/vm1/hl");
	g_assert_cmpint(link(outside, inside), ==, 0);
	g_free(inside);
	inside = path_in(b.dir, "images/vm1/snap/hl");
	g_assert_cmpint(link(outside, inside), ==, 0);
	g_free(inside);
	inside = path_in(b.dir, "shared/exact");
	g_assert_cmpint(link(outside, inside), ==, 0);
	g_free(inside);
	assert_refused(&b, "images/vm1/hl", O_RDONLY, -EACCES);
	assert_refused(&b, "images/vm1/snap/hl", O_RDWR, -EACCES);
	assert_refused(&b, "images/vm1/snap/hl", O_RDWR | O_CREAT, -EACCES);
	/* an exact rule names the inode itself, whatever other names it has */
	assert_opens(&b, "shared/exact", O_RDONLY, "outside/passwd");
	g_free(outside);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_flags(void)
{
	static const uint32_t refused[] = {
		O_PATH, O_RDONLY | O_PATH, O_TMPFILE | O_RDWR, O_RDWR | 020000000,
		O_NOATIME, O_ASYNC, O_ACCMODE, 0x40000000, 0x80000000u, 0x4000000,
	};
	struct broker b;

	broker_start(&b, standard_policy);
	for (size_t i = 0; i < G_N_ELEMENTS(refused); i++)
		assert_refused(&b, "images/vm1/disk.img", refused[i], -EINVAL);
	assert_refused(&b, "images/vm1/snap", O_TMPFILE | O_RDWR, -EINVAL);
	assert_opens(&b, "images/vm1.qcow2",
		     O_RDWR | O_CLOEXEC | O_DIRECT | O_DSYNC | O_SYNC | O_NONBLOCK | O_NOCTTY |
		     0100000 | O_NOFOLLOW | O_APPEND, "images/vm1.qcow2");
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A frame the broker must answer by dropping the client (after our EOF if asked). */
static void assert_dropped_eof(const uint8_t *frame, size_t len, bool eof, const char *what)
{
	struct broker b;
	char *audit;

	broker_start(&b, standard_policy);
	send_all(b.sock, frame, len);
	if (eof)
		shutdown(b.sock, SHUT_WR);
	if (!peer_closed(b.sock, 5000))
		g_error("%s: client not dropped", what);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	audit = read_text(b.audit);
	if (!strstr(audit, "\"decision\":\"drop\""))
		g_error("%s: no drop in the audit: %s", what, audit);
	g_free(audit);
	broker_free(&b);
}

static void assert_dropped(const uint8_t *frame, size_t len, const char *what)
{
	assert_dropped_eof(frame, len, false, what);
}

static void test_bad_frames(void)
{
	uint8_t f[OH_FRAME_MAX + 64];
	size_t n;

	memset(f, 'A', sizeof f);
	put_u32(f, 4), put_u32(f + 4, 1);
	assert_dropped(f, 8, "size below the header");
	put_u32(f, 0xffffffffu);
	assert_dropped(f, 8, "size 4 GiB");
	put_u32(f, OH_FRAME_MAX + 1), put_u32(f + 4, 77);
	assert_dropped(f, sizeof f, "oversized unknown command");
	n = encode_open(f, sizeof f, O_RDONLY, 0, "/images/x", 9);
	put_u32(f, (uint32_t)n + 1);
	assert_dropped(f, n + 1, "size longer than the name");
	n = encode_open(f, sizeof f, O_RDONLY, 0, "/images/x", 9);
	put_u32(f, (uint32_t)n - 1);
	assert_dropped(f, n, "size shorter than the name");
	n = encode_open(f, sizeof f, O_RDONLY, 0, "/", 1);
	memset(f + 16, 0, 2), put_u32(f, 18);
	assert_dropped(f, 18, "empty name");
	n = encode_open(f, sizeof f, O_RDONLY, 0, "/images/\0x", 10);
	assert_dropped(f, n, "NUL in the name");
	put_u32(f, 12), put_u32(f + 4, OH_CMD_OPEN);
	assert_dropped(f, 12, "OPEN without its fixed part");
	put_u32(f, 8), put_u32(f + 4, OH_CMD_HELLO);
	assert_dropped(f, 8, "HELLO without a version");
	n = encode_open(f, sizeof f, O_RDONLY, 0, "/images/x", 9);
	assert_dropped_eof(f, n - 3, true, "frame cut short by EOF");
	for (size_t i = 0; i < 64; i++)
		f[i] = (uint8_t)g_test_rand_int();
	put_u32(f, 0x80000000u | g_test_rand_int());
	assert_dropped(f, 64, "garbage");
}

/* A long name (4095 bytes) is accepted as a frame; the policy says no. */
static void test_long_name(void)
{
	char name[OH_NAME_MAX + 2];
	uint8_t f[OH_FRAME_MAX + 8];
	struct broker b;
	size_t n;
	int fd;

	broker_start(&b, standard_policy);
	memset(name, 'a', sizeof name);
	name[0] = '/';
	name[OH_NAME_MAX] = '\0';
	g_assert_cmpint(hook_open(b.sock, name, O_RDONLY, &fd), ==, -EACCES);
	g_assert_cmpuint(encode_open(f, sizeof f, 0, 0, name, OH_NAME_MAX + 1), ==, 0);
	/* by hand: len 4096 does not fit the protocol */
	n = encode_open(f, sizeof f, 0, 0, name, OH_NAME_MAX);
	put_u32(f, (uint32_t)n + 1);
	memcpy(f + 16, &(uint16_t){ OH_NAME_MAX + 1 }, 2);
	f[n] = 'a';
	send_all(b.sock, f, n + 1);
	g_assert_true(peer_closed(b.sock, 5000));
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_hello_unknown_split(void)
{
	uint8_t f[256];
	struct broker b;
	uint32_t cmd;
	int32_t result;
	size_t n;
	int fd;

	broker_start(&b, standard_policy);
	n = encode_hello(f, 7);
	send_all(b.sock, f, n);
	g_assert_true(hook_reply(b.sock, 5000, &cmd, &result, &fd));
	g_assert_cmpuint(cmd, ==, OH_CMD_HELLO);
	g_assert_cmpint(result, ==, 1);
	g_assert_cmpint(fd, ==, -1);
	memset(f, 0xee, sizeof f);
	put_u32(f, 200), put_u32(f + 4, 77);
	send_all(b.sock, f, 200);
	g_assert_true(hook_reply(b.sock, 5000, &cmd, &result, &fd));
	g_assert_cmpuint(cmd, ==, 77);
	g_assert_cmpint(result, ==, -ENOSYS);
	/* one byte at a time still makes one request */
	n = encode_open(f, sizeof f, O_RDONLY, 0, "/dev/null", 9);
	for (size_t i = 0; i < n; i++) {
		send_all(b.sock, f + i, 1);
		g_usleep(1000);
	}
	g_assert_true(hook_reply(b.sock, 5000, &cmd, &result, &fd));
	g_assert_cmpint(result, ==, 0);
	close(fd);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

/*
 * QEMU waits for each reply, but the protocol does not require it: frames
 * that arrive together, ending in half a frame, are answered in order.
 */
static void test_pipelined(void)
{
	enum { FRAMES = 40 };
	uint8_t buf[FRAMES * 64];
	struct broker b;
	size_t len = 0, half;
	uint32_t cmd;
	int32_t result;
	int fd;

	broker_start(&b, standard_policy);
	for (int i = 0; i < FRAMES; i++) {
		if (i % 3 == 0)
			len += encode_hello(buf + len, 1);
		else if (i % 3 == 1)
			len += encode_open(buf + len, sizeof buf - len, O_RDONLY, 0, "/dev/null", 9);
		else
			len += encode_open(buf + len, sizeof buf - len, O_RDONLY, 0, "/etc/passwd", 11);
	}
	half = len - 5;
	send_all(b.sock, buf, half);
	g_usleep(20000);
	send_all(b.sock, buf + half, len - half);
	for (int i = 0; i < FRAMES; i++) {
		g_assert_true(hook_reply(b.sock, 5000, &cmd, &result, &fd));
		g_assert_cmpuint(cmd, ==, i % 3 == 0 ? OH_CMD_HELLO : OH_CMD_OPEN);
		g_assert_cmpint(result, ==, i % 3 == 0 ? 1 : i % 3 == 1 ? 0 : -EACCES);
		g_assert_cmpint(fd >= 0, ==, i % 3 == 1);
		if (fd >= 0)
			close(fd);
	}
	g_assert_false(hook_reply(b.sock, 100, &cmd, &result, &fd));
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void send_with_fds(int sock, const void *buf, size_t len, int count)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} control;
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
	int fds[64];

	for (int i = 0; i < count; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
	memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)count);
	g_assert_cmpint(sendmsg(sock, &msg, MSG_NOSIGNAL), ==, (ssize_t)len);
	for (int i = 0; i < count; i++)
		close(fds[i]);
}

static void test_fds_sent_to_broker(void)
{
	uint8_t f[64];
	struct broker b;
	g_autofree char *audit = NULL;
	long before;
	size_t n = encode_open(f, sizeof f, O_RDONLY, 0, "/dev/null", 9);

	broker_start_listen(&b, standard_policy);
	before = proc_fd_count(b.pid);
	for (int round = 0; round < 50; round++) {
		int s = broker_connect(&b);

		send_with_fds(s, f, round % 2 ? n : 4, 1 + round % 64);
		g_assert_true(peer_closed(s, 5000));
		close(s);
	}
	g_assert_cmpint(proc_fd_count(b.pid), ==, before);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	audit = read_text(b.audit);
	g_assert_nonnull(strstr(audit, "descriptors sent to the broker"));
	broker_free(&b);
}

static void test_fd_flood(void)
{
	enum { LIMIT = 32, CONNECTIONS = 100 };
	int socks[CONNECTIONS], s, fd;
	long ticks;
	struct broker b;

	broker_start_listen_limited(&b, standard_policy, LIMIT);
	for (int i = 0; i < CONNECTIONS; i++)
		socks[i] = broker_connect(&b);
	g_usleep(300000);
	/* out of descriptors, the broker must rest rather than spin on accept */
	ticks = proc_cpu_ticks(b.pid);
	g_usleep(G_USEC_PER_SEC);
	g_assert_cmpint(proc_cpu_ticks(b.pid) - ticks, <, 20);
	/* an accepted client still gets answers: EMFILE is the real errno */
	g_assert_cmpint(hook_open(socks[0], "/dev/null", O_RDWR, &fd), ==, -EMFILE);
	for (int i = 0; i < CONNECTIONS; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	g_usleep(500000);
	s = broker_connect(&b);
	g_assert_cmpint(s, >=, 0);
	g_assert_cmpint(hook_open(s, "/dev/null", O_RDWR, &fd), ==, 0);
	close(fd);
	close(s);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_stuck_client(void)
{
	uint8_t f[64];
	struct broker b;
	int stalled, flooder, normal, fd;
	long before;
	size_t n = encode_open(f, sizeof f, O_RDWR, 0, "/dev/null", 9);

	broker_start_listen(&b, standard_policy);
	stalled = broker_connect(&b);
	flooder = broker_connect(&b);
	normal = broker_connect(&b);
	g_usleep(200000);
	before = proc_fd_count(b.pid);
	send_all(stalled, f, 10);          /* half a frame, then silence */
	fcntl(flooder, F_SETFL, O_NONBLOCK);
	/* requests and never a read: its replies back up, and only its own */
	for (int i = 0; i < 20000; i++)
		if (send(flooder, f, n, MSG_NOSIGNAL) < 0)
			break;
	/* a starved client would see hook_open() give up waiting */
	for (int i = 0; i < 200; i++) {
		g_assert_cmpint(hook_open(normal, "/dev/null", O_RDWR, &fd), ==, 0);
		close(fd);
	}
	/* the broker holds at most one reply descriptor for the flooder */
	g_usleep(300000);      /* let the flooder's backlog run into its full buffer */
	g_assert_cmpint(proc_fd_count(b.pid), <=, before + 1);
	close(stalled);
	close(flooder);
	close(normal);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

/* A batch of refused requests in one write, then all the replies. */
static void bad_batch(int sock, int count, int seed)
{
	static const char *paths[] = { "/etc/shadow", "relative/path", "/proc/self/fd/0",
				       "/images/../etc/passwd" };
	uint8_t buf[64 * 64];
	size_t used = 0;

	for (int i = 0; i < count; i++) {
		const char *p = paths[(seed + i) % 4];
		uint32_t flags = (seed + i) % 3 ? O_RDONLY : O_PATH;

		used += encode_open(buf + used, sizeof buf - used, flags, 0, p, strlen(p));
	}
	send_all(sock, buf, used);
	for (int i = 0; i < count; i++) {
		uint32_t cmd;
		int32_t result;
		int fd;

		g_assert_true(hook_reply(sock, 5000, &cmd, &result, &fd));
		g_assert_cmpint(result, <, 0);
	}
}

static void malformed_connection(const struct broker *b)
{
	int s = broker_connect(b);
	uint8_t f[8];

	put_u32(f, 3), put_u32(f + 4, 1);
	send_all(s, f, sizeof f);
	g_assert_true(peer_closed(s, 5000));
	close(s);
}

static void test_stable_after_100k(void)
{
	struct broker b;
	long fds, rss;
	int s;

	broker_start_listen(&b, standard_policy);
	s = broker_connect(&b);
	for (int i = 0; i < 20; i++)
		bad_batch(s, 50, i);
	malformed_connection(&b);
	fds = proc_fd_count(b.pid);
	rss = proc_rss_kib(b.pid);
	for (int i = 0; i < 2000; i++)
		bad_batch(s, 50, i);
	for (int i = 0; i < 1000; i++)
		malformed_connection(&b);
	g_test_message("after 100k bad requests and 1000 drops: fds %ld -> %ld, RSS %ld -> %ld KiB",
		       fds, proc_fd_count(b.pid), rss, proc_rss_kib(b.pid));
	g_assert_cmpint(proc_fd_count(b.pid), ==, fds);
	g_assert_cmpint(proc_rss_kib(b.pid), <, rss + 256);
	close(s);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	broker_free(&b);
}

static void test_reload(void)
{
	struct broker b;
	char *log;
	int fd;

	broker_start(&b, standard_policy);
	assert_refused(&b, "outside/passwd", O_RDONLY, -EACCES);
	g_free(write_policy(b.dir, "ro @D@/outside/\n"));
	kill(b.pid, SIGHUP);
	g_usleep(300000);
	assert_opens(&b, "outside/passwd", O_RDONLY, "outside/passwd");
	write_text(b.policy, "ro relative/path\n");
	kill(b.pid, SIGHUP);
	g_usleep(300000);
	assert_opens(&b, "outside/passwd", O_RDONLY, "outside/passwd");
	g_assert_cmpint(tree_open(&b, "images/base.qcow2", O_RDONLY, &fd), ==, -EACCES);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	log = read_text(b.stderr_log);
	g_assert_nonnull(strstr(log, "reload rejected, old policy kept"));
	g_assert_nonnull(strstr(log, "policy:1: path must be absolute"));
	g_free(log);
	broker_free(&b);
}

/*
 * A grant is only handed out once its audit line is written.  After a
 * reload that reopens the audit file as /dev/full (and a rejected policy
 * still reopens it: log rotation needs that), grants become EIO.
 */
static void test_audit_write_fails(void)
{
	struct broker b;
	char *log;
	int fd;

	broker_start(&b, standard_policy);
	assert_opens(&b, "images/base.qcow2", O_RDONLY, "images/base.qcow2");
	g_assert_cmpint(unlink(b.audit), ==, 0);
	g_assert_cmpint(symlink("/dev/full", b.audit), ==, 0);
	write_text(b.policy, "ro relative/path\n");
	kill(b.pid, SIGHUP);
	g_usleep(300000);
	g_assert_cmpint(tree_open(&b, "images/base.qcow2", O_RDONLY, &fd), ==, -EIO);
	g_assert_cmpint(fd, ==, -1);
	assert_refused(&b, "outside/passwd", O_RDONLY, -EACCES);
	g_assert_cmpint(broker_stop(&b), ==, 0);
	log = read_text(b.stderr_log);
	g_assert_nonnull(strstr(log, "audit write failed (No space left on device)"));
	g_free(log);
	broker_free(&b);
}

static void test_audit_record(void)
{
	struct broker b;
	char *audit;
	int fd;

	broker_start(&b, standard_policy);
	g_assert_cmpint(hook_open(b.sock, "/x\"y\n\xff\\", O_RDWR | O_CREAT, &fd), ==, -EACCES);
	assert_opens(&b, "images/vm1/snap/../disk.img", O_RDONLY | O_CLOEXEC, "images/vm1/disk.img");
	g_assert_cmpint(broker_stop(&b), ==, 0);
	audit = read_text(b.audit);
	g_assert_nonnull(strstr(audit, "\"path\":\"/x\\\"y\\u000a\\u00ff\\\\\""));
	g_assert_nonnull(strstr(audit, "\"flags\":\"O_RDWR|O_CREAT\",\"decision\":\"deny\","
				"\"result\":-13,\"errno\":\"EACCES\",\"rule\":null"));
	g_assert_nonnull(strstr(audit, "/images/vm1/disk.img\",\"flags\":\"O_RDONLY|O_CLOEXEC\","
				"\"decision\":\"allow\",\"result\":0,\"errno\":null,"
				"\"rule\":\"ro "));
	g_assert_nonnull(strstr(audit, "\"client\":{\"pid\":"));
	g_free(audit);
	broker_free(&b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/attack/allowed-basics", test_allowed_basics);
	g_test_add_func("/attack/policy-refusals", test_policy_refusals);
	g_test_add_func("/attack/create", test_create);
	g_test_add_func("/attack/dotdot", test_dotdot);
	g_test_add_func("/attack/symlink-escape", test_symlink_escape);
	g_test_add_func("/attack/symlink-race", test_symlink_race);
	g_test_add_func("/attack/magic-links", test_magic_links);
	g_test_add_func("/attack/fifo", test_fifo);
	g_test_add_func("/attack/lease", test_lease);
	g_test_add_func("/attack/device-node", test_device_node);
	g_test_add_func("/attack/hardlink", test_hardlink);
	g_test_add_func("/attack/flags", test_flags);
	g_test_add_func("/attack/bad-frames", test_bad_frames);
	g_test_add_func("/attack/long-name", test_long_name);
	g_test_add_func("/attack/hello-unknown-split", test_hello_unknown_split);
	g_test_add_func("/attack/pipelined", test_pipelined);
	g_test_add_func("/attack/fds-sent-to-broker", test_fds_sent_to_broker);
	g_test_add_func("/attack/fd-flood", test_fd_flood);
	g_test_add_func("/attack/stuck-client", test_stuck_client);
	g_test_add_func("/attack/stable-after-100k", test_stable_after_100k);
	g_test_add_func("/attack/reload", test_reload);
	g_test_add_func("/attack/audit-write-fails", test_audit_write_fails);
	g_test_add_func("/attack/audit-record", test_audit_record);
	return g_test_run();
}

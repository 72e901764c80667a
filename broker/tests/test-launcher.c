/* The launcher: exit status, signals, and the Landlock sandbox. */
#include "harness.h"

#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
	int status;
	char *out, *err;
};

/* A scratch tree with the test's policy written into it. */
struct fixture {
	char *dir, *policy, *image, *audit;
};

static const char image_policy[] = "ro @D@/images/base.qcow2\nrw @D@/images/vm1.qcow2\n";
static const char overlap_policy[] = "ro @D@/images/base.qcow2\nsandbox-ro @D@/images/\n";

static void setup(struct fixture *f, gconstpointer policy_text)
{
	f->dir = scratch_tree();
	f->policy = write_policy(f->dir, policy_text);
	f->image = path_in(f->dir, "images/base.qcow2");
	f->audit = path_in(f->dir, "audit.log");
}

static void teardown(struct fixture *f, gconstpointer unused)
{
	(void)unused;
	remove_tree(f->dir);
	g_free(f->dir);
	g_free(f->policy);
	g_free(f->image);
	g_free(f->audit);
}

static char *helper(const char *var)
{
	char *p = getenv(var);

	g_assert_nonnull(p);
	return p;
}

/* Runs argv (NULL-terminated) to completion, capturing its output. */
static void run(char **argv, struct run *r)
{
	GError *error = NULL;
	int wait_status;

	g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &r->out, &r->err,
		     &wait_status, &error);
	g_assert_no_error(error);
	r->status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status)
					   : 128 + WTERMSIG(wait_status);
}

/* Runs argv and checks its status and that stream contains text. */
static void expect(char **argv, int status, bool on_stdout, const char *text)
{
	struct run r;

	run(argv, &r);
	if (r.status != status || (text && !strstr(on_stdout ? r.out : r.err, text)))
		g_error("%s ...: status %d, stdout \"%s\", stderr \"%s\"", argv[0], r.status,
			r.out, r.err);
	g_free(r.out);
	g_free(r.err);
}

static char *bin(void)
{
	return (char *)server_binary();
}

static void test_exit_status(struct fixture *f, gconstpointer unused)
{
	char *argv[] = { bin(), "--policy", f->policy, "--", "/bin/sh", "-c", "exit 7", NULL };
	char *missing[] = { bin(), "--policy", f->policy, "--", "no-such-command-here", NULL };

	(void)unused;
	expect(argv, 7, false, NULL);
	expect(missing, 127, false, "command not found");
}

static void test_signal_forwarded(struct fixture *f, gconstpointer unused)
{
	char *argv[] = { bin(), "--policy", f->policy, "--", "/bin/sleep", "30", NULL };
	GPid pid;

	(void)unused;
	g_assert_true(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
				    &pid, NULL));
	g_usleep(300000);
	kill(pid, SIGTERM);
	g_assert_cmpint(wait_exit(pid, 5000), ==, 128 + SIGTERM);
}

/* A child killed by a signal: the launcher dies by it too, as the child did */
static void test_dies_like_child(struct fixture *f, gconstpointer unused)
{
	char *argv[] = { bin(), "--policy", f->policy, "--", "/bin/sh", "-c", "kill -KILL $$", NULL };
	GError *error = NULL;
	int wait_status;

	(void)unused;
	g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &wait_status,
		     &error);
	g_assert_no_error(error);
	g_assert_true(WIFSIGNALED(wait_status));
	g_assert_cmpint(WTERMSIG(wait_status), ==, SIGKILL);
}

static void test_hook_without_sandbox(struct fixture *f, gconstpointer unused)
{
	char *argv[] = { bin(), "--policy", f->policy, "--hook-fd", "5", "--",
			 helper("HOOK_CLIENT"), "5", "-", f->image, NULL };

	(void)unused;
	expect(argv, 0, true, "base\n");
}

/* The point of it all: confined, the child reaches the image only through us. */
static void test_sandbox_confines(struct fixture *f, gconstpointer unused)
{
	char *argv[] = { bin(), "--policy", f->policy, "--audit", f->audit, "--sandbox", "--",
			 helper("HOOK_CLIENT"), "3", f->image, f->image, NULL };
	char *log;

	(void)unused;
	expect(argv, 0, true, "base\n");
	log = read_text(f->audit);
	g_assert_nonnull(strstr(log, "\"decision\":\"allow\""));
	g_free(log);
}

static void test_sandbox_refuses_overlap(struct fixture *f, gconstpointer unused)
{
	char *argv[] = { bin(), "--policy", f->policy, "--sandbox", "--", "/bin/true", NULL };

	(void)unused;
	expect(argv, 125, false, "policy:1: --sandbox: brokered path");
}

static void test_sandbox_without_landlock(struct fixture *f, gconstpointer unused)
{
	char *strict[] = { helper("NO_LANDLOCK"), bin(), "--policy", f->policy, "--sandbox",
			   "--", "/bin/true", NULL };
	char *lenient[] = { helper("NO_LANDLOCK"), bin(), "--policy", f->policy,
			    "--sandbox=best-effort", "--", "/bin/true", NULL };

	(void)unused;
	expect(strict, 125, false, "Landlock is not available");
	expect(lenient, 0, false, "warning: Landlock unavailable");
}

static void test_usage(struct fixture *f, gconstpointer unused)
{
	char *help[] = { bin(), "--help", NULL };
	char *no_policy[] = { bin(), "--fd", "3", NULL };
	char *two_modes[] = { bin(), "--policy", f->policy, "--fd", "3", "--listen", "x", NULL };
	char *sandbox_no_launch[] = { bin(), "--policy", f->policy, "--sandbox", "--fd", "3", NULL };
	char *bad_policy[] = { bin(), "--policy", "/nonexistent", "--fd", "0", NULL };

	(void)unused;
	expect(help, 0, true, "--sandbox=best-effort");
	expect(no_policy, 2, false, "--policy FILE is required");
	expect(two_modes, 2, false, "choose one of");
	expect(sandbox_no_launch, 2, false, "for the launcher only");
	expect(bad_policy, 2, false, "/nonexistent: cannot read");
}

#define ADD(name, policy, func) \
	g_test_add("/launcher/" name, struct fixture, policy, setup, func, teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("exit-status", image_policy, test_exit_status);
	ADD("signal-forwarded", image_policy, test_signal_forwarded);
	ADD("dies-like-child", image_policy, test_dies_like_child);
	ADD("hook-without-sandbox", image_policy, test_hook_without_sandbox);
	ADD("sandbox-confines", image_policy, test_sandbox_confines);
	ADD("sandbox-refuses-overlap", overlap_policy, test_sandbox_refuses_overlap);
	ADD("sandbox-without-landlock", image_policy, test_sandbox_without_landlock);
	ADD("usage", image_policy, test_usage);
	return g_test_run();
}

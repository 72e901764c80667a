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

static const char *helper(const char *var)
{
	const char *p = getenv(var);

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

static void run_free(struct run *r)
{
	g_free(r->out);
	g_free(r->err);
}

static char *policy_file(const char *dir, const char *text)
{
	char *path = path_in(dir, "policy");
	char *expanded = expand(dir, text);

	write_text(path, expanded);
	g_free(expanded);
	return path;
}

static const char image_policy[] = "ro @D@/images/base.qcow2\nrw @D@/images/vm1.qcow2\n";

static void test_exit_status(void)
{
	char *dir = scratch_tree(), *policy = policy_file(dir, image_policy);
	char *argv[] = { (char *)server_binary(), "--policy", policy, "--", "/bin/sh", "-c",
			 "exit 7", NULL };
	char *missing[] = { (char *)server_binary(), "--policy", policy, "--",
			    "no-such-command-here", NULL };
	struct run r;

	run(argv, &r);
	g_assert_cmpint(r.status, ==, 7);
	run_free(&r);
	run(missing, &r);
	g_assert_cmpint(r.status, ==, 127);
	g_assert_nonnull(strstr(r.err, "command not found"));
	run_free(&r);
	remove_tree(dir);
	g_free(policy);
	g_free(dir);
}

static void test_signal_forwarded(void)
{
	char *dir = scratch_tree(), *policy = policy_file(dir, image_policy);
	char *argv[] = { (char *)server_binary(), "--policy", policy, "--", "/bin/sleep", "30", NULL };
	GPid pid;

	g_assert_true(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL));
	g_usleep(300000);
	kill(pid, SIGTERM);
	g_assert_cmpint(wait_exit(pid, 5000), ==, 128 + SIGTERM);
	remove_tree(dir);
	g_free(policy);
	g_free(dir);
}

static void test_hook_without_sandbox(void)
{
	char *dir = scratch_tree(), *policy = policy_file(dir, image_policy);
	char *image = path_in(dir, "images/base.qcow2");
	char *argv[] = { (char *)server_binary(), "--policy", policy, "--hook-fd", "5", "--",
			 (char *)helper("HOOK_CLIENT"), "5", "-", image, NULL };
	struct run r;

	run(argv, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "base\n");
	run_free(&r);
	remove_tree(dir);
	g_free(image);
	g_free(policy);
	g_free(dir);
}

/* The point of it all: confined, the child reaches the image only through us. */
static void test_sandbox_confines(void)
{
	char *dir = scratch_tree(), *policy = policy_file(dir, image_policy);
	char *image = path_in(dir, "images/base.qcow2");
	char *audit = path_in(dir, "audit.log");
	char *argv[] = { (char *)server_binary(), "--policy", policy, "--audit", audit,
			 "--sandbox", "--", (char *)helper("HOOK_CLIENT"), "3", image, image, NULL };
	char *log;
	struct run r;

	run(argv, &r);
	if (r.status != 0)
		g_error("confined hook-client failed (%d): %s", r.status, r.err);
	g_assert_cmpstr(r.out, ==, "base\n");
	log = read_text(audit);
	g_assert_nonnull(strstr(log, "\"decision\":\"allow\""));
	g_free(log);
	run_free(&r);
	remove_tree(dir);
	g_free(audit);
	g_free(image);
	g_free(policy);
	g_free(dir);
}

static void test_sandbox_refuses_overlap(void)
{
	char *dir = scratch_tree();
	char *policy = policy_file(dir, "ro @D@/images/base.qcow2\nsandbox-ro @D@/images/\n");
	char *argv[] = { (char *)server_binary(), "--policy", policy, "--sandbox", "--",
			 "/bin/true", NULL };
	struct run r;

	run(argv, &r);
	g_assert_cmpint(r.status, ==, 125);
	g_assert_nonnull(strstr(r.err, "policy:1: --sandbox: brokered path"));
	run_free(&r);
	remove_tree(dir);
	g_free(policy);
	g_free(dir);
}

static void test_sandbox_without_landlock(void)
{
	char *dir = scratch_tree(), *policy = policy_file(dir, image_policy);
	char *strict[] = { (char *)helper("NO_LANDLOCK"), (char *)server_binary(), "--policy",
			   policy, "--sandbox", "--", "/bin/true", NULL };
	char *lenient[] = { (char *)helper("NO_LANDLOCK"), (char *)server_binary(), "--policy",
			    policy, "--sandbox=best-effort", "--", "/bin/true", NULL };
	struct run r;

	run(strict, &r);
	g_assert_cmpint(r.status, ==, 125);
	g_assert_nonnull(strstr(r.err, "Landlock is not available"));
	run_free(&r);
	run(lenient, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.err, "warning: Landlock unavailable"));
	run_free(&r);
	remove_tree(dir);
	g_free(policy);
	g_free(dir);
}

static void test_usage(void)
{
	char *help[] = { (char *)server_binary(), "--help", NULL };
	char *none[] = { (char *)server_binary(), "--fd", "3", NULL };
	char *both[] = { (char *)server_binary(), "--policy", "p", "--fd", "3", "--listen", "x", NULL };
	char *bad_policy[] = { (char *)server_binary(), "--policy", "/nonexistent", "--fd", "0", NULL };
	struct run r;

	run(help, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "--sandbox=best-effort"));
	run_free(&r);
	run(none, &r);
	g_assert_cmpint(r.status, ==, 2);
	run_free(&r);
	run(both, &r);
	g_assert_cmpint(r.status, ==, 2);
	run_free(&r);
	run(bad_policy, &r);
	g_assert_cmpint(r.status, ==, 2);
	g_assert_nonnull(strstr(r.err, "/nonexistent: cannot read"));
	run_free(&r);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/launcher/exit-status", test_exit_status);
	g_test_add_func("/launcher/signal-forwarded", test_signal_forwarded);
	g_test_add_func("/launcher/hook-without-sandbox", test_hook_without_sandbox);
	g_test_add_func("/launcher/sandbox-confines", test_sandbox_confines);
	g_test_add_func("/launcher/sandbox-refuses-overlap", test_sandbox_refuses_overlap);
	g_test_add_func("/launcher/sandbox-without-landlock", test_sandbox_without_landlock);
	g_test_add_func("/launcher/usage", test_usage);
	return g_test_run();
}

/* Client side of a reply, shared by the test harness and hook-client. */
#ifndef OPEN_HOOK_TEST_WIRE_H
#define OPEN_HOOK_TEST_WIRE_H

#include <stdbool.h>
#include <stdint.h>

/* Reads one 12-byte reply; *fd is the attached descriptor or -1. */
bool receive_reply(int sock, uint32_t *command, int32_t *result, int *fd);

#endif

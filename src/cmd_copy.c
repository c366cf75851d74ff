/* cmd_copy.c — `pgmemctl copy`: placeholder wiring, replaced by the copy implementation. */
#include "cmd.h"
#include "log.h"

#include <stdio.h>

const opt_spec cmd_copy_specs[] = {
    {0},
};

void cmd_copy_help(void) { printf("usage: pgmemctl copy --from PATH\n"); }

int cmd_copy(const global_ctx *g, int argc, char **argv)
{
    (void) g;
    (void) argc;
    (void) argv;
    log_error("copy: not implemented yet");
    return EXIT_FAILURE_;
}

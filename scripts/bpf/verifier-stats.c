/* Loads a BPF object and prints, per program, the instructions the verifier processed (its
 * "processed N insns" statistic: how near each program is to the verifier's limit) and the
 * program's own size. Usage: verifier-stats OBJECT.bpf.o  (root; nothing is attached). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

static char logs[64][1 << 16];

int main(int argc, char **argv)
{
    struct bpf_object *obj;
    struct bpf_program *prog;
    int n = 0, err;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OBJECT.bpf.o\n", argv[0]);
        return 2;
    }
    obj = bpf_object__open_file(argv[1], NULL);
    if (!obj) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 1;
    }
    bpf_object__for_each_program(prog, obj) {
        if (n == 64)
            break;
        bpf_program__set_log_level(prog, 4); /* BPF_LOG_STATS */
        bpf_program__set_log_buf(prog, logs[n++], sizeof(logs[0]));
    }
    err = bpf_object__load(obj);
    n = 0;
    bpf_object__for_each_program(prog, obj) {
        const char *p = strstr(logs[n++], "processed ");
        unsigned long insns = 0;
        if (p)
            sscanf(p, "processed %lu insns", &insns);
        printf("%-22s %8lu verified  %6zu in program%s\n", bpf_program__name(prog), insns,
               bpf_program__insn_cnt(prog), bpf_program__autoload(prog) ? "" : "  (not loaded)");
    }
    bpf_object__close(obj);
    if (err)
        fprintf(stderr, "load failed: %d (some programs need a kernel feature this one lacks)\n", err);
    return 0;
}

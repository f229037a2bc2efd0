/*
 * replay.c - runs the fuzz harness (nl_fuzz.c) over files, without libFuzzer: any compiler,
 * typically gcc with -fsanitize=address,undefined. Arguments are files or directories (their
 * regular files, in name order). Exits non-zero if an input cannot be read; a broken
 * invariant or a sanitizer report aborts. "nl_replay --scenarios" runs the harness's
 * deterministic scenarios instead and exits non-zero if one fails.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int nl_fuzz_scenarios(void);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, size = 0;
    uint8_t *data = malloc(cap);
    for (;;) {
        if (data == NULL) {
            fclose(f);
            fprintf(stderr, "%s: out of memory\n", path);
            return -1;
        }
        size += fread(data + size, 1, cap - size, f);
        if (size < cap)
            break;
        uint8_t *bigger = realloc(data, cap * 2);
        if (bigger == NULL)
            free(data);
        data = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error\n", path);
        free(data);
        return -1;
    }
    /* an exact-size copy, as libFuzzer passes it: ASan then sees any overread */
    uint8_t *exact = malloc(size ? size : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    long done = 0;
    int failed = 0;
    if (argc == 2 && strcmp(argv[1], "--scenarios") == 0)
        return nl_fuzz_scenarios() != 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= replay_file(argv[i]) < 0;
            done++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                failed |= replay_file(path) < 0;
                done++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %ld inputs%s\n", done, failed ? " (some could not be read)" : "");
    return failed;
}

/* A small musl program for the agent to be preloaded into: allocates, says "host: ready" on
   stderr, then sleeps until a signal ends it or for argv[1] seconds (60 by default) and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 60;
  enum { kBlocks = 256, kSize = 64 * 1024 };
  static char* blocks[kBlocks];
  for (int i = 0; i < kBlocks; i++) {
    blocks[i] = malloc(kSize);
    if (blocks[i] == NULL) return 1;
    memset(blocks[i], i, kSize);
  }
  for (int i = 0; i < kBlocks; i += 2) free(blocks[i]);
  fprintf(stderr, "host: ready\n");
  while (seconds-- > 0) sleep(1);
  for (int i = 1; i < kBlocks; i += 2) free(blocks[i]);
  return 0;
}

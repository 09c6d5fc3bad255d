/* A trainer's smallest use of libtern, built against the installed tree through pkg-config:
 * links, reports the library version, and (given a socket path) asks that ternd for its status;
 * with a path nobody serves, the error must say so. Exit 0 when all of that holds. */
#include <stdio.h>
#include <string.h>
#include <tern/tern.h>

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/nonexistent/ternd.sock";
  const int expect_daemon = argc > 1;
  printf("libtern %s (header %d.%d.%d)\n", tern_version(), TERN_VERSION_MAJOR, TERN_VERSION_MINOR,
         TERN_VERSION_PATCH);
  tern_client_t* client = NULL;
  tern_status_t s = tern_connect(path, &client);
  if (!expect_daemon) {
    if (s != TERN_UNAVAILABLE || client != NULL || strlen(tern_last_error()) == 0) {
      fprintf(stderr, "connect to %s: want TERN_UNAVAILABLE with a message, got %s: %s\n", path,
              tern_status_name(s), tern_last_error());
      return 1;
    }
    printf("no ternd at %s, as expected: %s\n", path, tern_last_error());
    return 0;
  }
  if (s != TERN_OK) {
    fprintf(stderr, "connect to %s: %s: %s\n", path, tern_status_name(s), tern_last_error());
    return 1;
  }
  char status[65536];
  size_t length = 0;
  s = tern_daemon_status(client, status, sizeof status, &length);
  tern_disconnect(client);
  if (s != TERN_OK || length == 0) {
    fprintf(stderr, "status: %s: %s\n", tern_status_name(s), tern_last_error());
    return 1;
  }
  printf("ternd status: %.*s\n", (int)(length < 200 ? length : 200), status);
  return 0;
}

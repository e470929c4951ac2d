// keep_dsos.c: linked into the sanitizer build of the trainer only. Open MPI loads its
// components with dlopen and unloads them in MPI_Finalize; LeakSanitizer then cannot name
// the library that made their allocations ("<unknown module>"), so tests/lsan.supp could
// not suppress them by library. Keeping every shared object loaded lets it: leak checking
// stays on for the project's own code.
int dlclose(void *handle);
int dlclose(void *handle) {
    (void)handle;
    return 0;
}

// partfiles.h: one input setting (data.path, data.train_path, ...) as the files it names.
//
// A plain path names itself. A directory names its data files: every entry except hidden
// ones and those starting with '_' (Spark's _SUCCESS, Hadoop's .crc files), directories
// excluded. A path with a glob character (* ? [) names the files it matches (glob(3)). Either
// way the list is sorted by name, so prepare reads the parts in one order on every run. An
// entry that cannot be stat'ed is kept (opening it reports the error, naming the part).
#pragma once

// A malloc'd array of *n malloc'd paths (partfiles_free frees them). A directory without
// data files, a glob that matches nothing or more than max_files files end the program
// with EXIT_USAGE, naming `key`.
char **partfiles_list(const char *path, const char *key, int max_files, int *n);
void partfiles_free(char **paths, int n);

/* Shared by the Check suites: a main() that runs one suite and reports. */
#ifndef DIVSIM_TESTUTIL_H
#define DIVSIM_TESTUTIL_H

#include <check.h>
#include <stdlib.h>

#define CHECK_MAIN(make_suite)                                  \
    int main(void)                                              \
    {                                                           \
        SRunner *runner = srunner_create(make_suite());         \
        srunner_run_all(runner, CK_NORMAL);                     \
        int failed = srunner_ntests_failed(runner);             \
        srunner_free(runner);                                   \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;            \
    }

#endif

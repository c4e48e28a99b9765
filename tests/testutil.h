/* Shared by the Check suites: a main() that runs one suite and reports, and
 * assertions for hot loops. */
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

/* ck_assert reports every pass to the parent process when tests fork, which
 * dominates hot loops; these speak only on failure. CALL_OK expects DS_OK. */
#define REQUIRE(cond, ...)                                                           \
    do {                                                                             \
        if (!(cond))                                                                 \
            ck_abort_msg(__VA_ARGS__);                                               \
    } while (0)
#define CALL_OK(expr) REQUIRE((expr) == DS_OK, "line %d: %s failed", __LINE__, #expr)

#endif

/* Header-only target: the ABI structs live in include/revenant_abi.h. */

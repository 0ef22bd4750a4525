/* A stand-in for Windows' bcryptprimitives.dll, for the Wine smoke test only
 * (`cargo xtask windows`). Rust's standard library draws random bytes with
 * its ProcessPrng; Debian bookworm's Wine 8.0 does not have that function
 * yet (Wine 9 does), so a program built by Rust cannot even start there.
 * This DLL, placed next to the .exe files, provides ProcessPrng on top of
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. Real Windows
 * never loads it: the test copies it into its own scratch directory only. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, n)) {
            return FALSE;
        }
        data += n;
        length -= n;
    }
    return TRUE;
}

/*
 * Test-harness stand-in for bcryptprimitives.dll under Wine 8.0 (Debian bookworm), never shipped.
 *
 * Rust's standard library (1.78 and later) takes its randomness from ProcessPrng in
 * bcryptprimitives.dll, which every Windows 10 and later has but Wine gained only in 8.13.
 * This DLL exports ProcessPrng and forwards it to RtlGenRandom (advapi32!SystemFunction036),
 * Wine's own CSPRNG, so the Windows build can be run under bookworm's Wine as it is shipped.
 * scripts/cross-test.sh builds it and copies it into the scratch Wine prefix's system32.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

/** How the log commands print numbers. */

/**
 * 1,234,567. Grouped here rather than with toLocaleString, which loads ICU's
 * locale data: ~20 ms of every CLI run.
 */
export const count = (n: number): string => String(Math.round(n)).replace(/\B(?=(\d{3})+$)/g, ',');

/** Megabytes (10^6), one decimal. */
export const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** Per second, as a count. */
export const rate = (n: number, ms: number): string => count(Math.round(n / (ms / 1000 || 1e-9)));

/** CPU time (all threads) since `c0`, in ms: a steadier figure than wall time on a busy machine. */
export const cpuMs = (c0: NodeJS.CpuUsage): number => {
  const c = process.cpuUsage(c0);
  return Math.round((c.user + c.system) / 1000);
};

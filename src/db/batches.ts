// Retention deletes run in bounded batches, so that no transaction or lock grows with the table.

/** Deletes batch after batch until one comes back short; the number of rows deleted. */
export async function deleteInBatches<Key>(
  batchSize: number,
  nextKeys: (limit: number) => Promise<Key[]>,
  remove: (keys: Key[]) => Promise<bigint | number>,
): Promise<number> {
  let total = 0;
  for (;;) {
    const keys = await nextKeys(batchSize);
    if (keys.length === 0) return total;
    total += Number(await remove(keys));
    if (keys.length < batchSize) return total;
  }
}

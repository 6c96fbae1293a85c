// Types for bin/tick-shape.cjs (the bench's ceiling server imports it from TypeScript).
export declare function keepTickEntryShape(): void;
export declare const KEPT: unique symbol;

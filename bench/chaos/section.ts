/**
 * One section of the chaos run (R1 … R5). A section is one file in sections/ that exports `section`; run.ts finds
 * it there, so adding a section touches nothing else.
 */
export interface ChaosSection {
    /** Short id used by `--only`, e.g. `R3`. */
    id: string;
    title: string;
    run(context: ChaosContext): Promise<SectionResult>;
}

export interface ChaosContext {
    /** Small counts: checks that the section runs, never its figures (CI). */
    quick: boolean;
    /** Progress for the person watching (one line each). */
    log(line: string): void;
}

export interface SectionResult {
    /** Column headings of the section's table, in order. */
    columns: string[];
    rows: ChaosRow[];
    /** Lines printed under the table: how to read it, what was configured. */
    notes?: string[];
}

export interface ChaosRow {
    /** Values by column heading. */
    cells: Record<string, string>;
    /**
     * The broker failed this check: it hung or died, or an attack succeeded. `--strict` exits 1 on any; `why` says
     * what failed.
     */
    failed?: { why: string };
    /** Raw figures for the JSON results. */
    data?: unknown;
}

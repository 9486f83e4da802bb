/** Moved to shared/deepkit/patches.ts (the Deepkit seam); kept until every importer loads it from there. */
export * from './deepkit/patches';

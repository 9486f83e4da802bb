/**
 * The second half of `npm run docs:api` (typedoc writes the reference to var/api/, with api.json beside the pages):
 * fails when a package's public API names a type of ours that the reference does not document, because no package
 * entry exports it. typedoc's own `validation.notExported` cannot see those: it takes every workspace package for an
 * outside one (the repository is `switchboard`, the types are `@switchboard/…`) and stays silent.
 */
import { readFileSync } from 'fs';
import { join } from 'path';

interface Node {
    id?: number;
    name?: string;
    kind?: number;
    type?: string;
    package?: string;
    refersToTypeParameter?: boolean;
    target?: number | { packagePath?: string, qualifiedName?: string };
    [key: string]: unknown;
}

/** Where a missing type is named: the top-level declaration (a class, an interface, a function …) of a package. */
function missingTypes(root: Node): Map<string, Set<string>> {
    const missing = new Map<string, Set<string>>();
    const visit = (value: unknown, owner: string): void => {
        if (Array.isArray(value)) {
            for (const item of value) visit(item, owner);
            return;
        }
        if (!value || typeof value !== 'object') return;
        const node = value as Node;
        // A module's children are the package's exports: name each finding by the export it was found in.
        const here = node.kind === 2 || node.kind === 1 ? node.name ?? owner : owner;
        if (node.type === 'reference' && typeof node.target === 'object' && !node.refersToTypeParameter && node.package?.startsWith('@switchboard/')) {
            const key = `${node.package}: ${node.target.qualifiedName ?? node.name} (${node.target.packagePath})`;
            missing.set(key, (missing.get(key) ?? new Set()).add(owner));
        }
        for (const [key, child] of Object.entries(node)) {
            if (key === 'children' && (node.kind === 2 || node.kind === 1)) {
                for (const declaration of child as Node[]) visit(declaration, `${here}.${declaration.name}`);
            } else {
                visit(child, here);
            }
        }
    };
    visit(root, '');
    return missing;
}

const reference = JSON.parse(readFileSync(join(__dirname, '..', 'var', 'api', 'api.json'), 'utf8')) as Node;
const missing = missingTypes(reference);
if (missing.size) {
    console.error(`The API reference names ${missing.size} type(s) of ours that no package entry exports; export them from the package's index.ts (\`export type\` for a type only), or mark the member that names them @internal:`);
    for (const [type, owners] of [...missing].sort()) console.error(`  ${type}, named by ${[...owners].sort().join(', ')}`);
    process.exit(1);
}
console.log('API reference: every type the public API names is documented');

/**
 * Node 20 defines `Symbol.asyncDispose` in its main realm, but not in the VM contexts jest runs tests in, where
 * `await using kit = …` would fail. Defining it where it is missing makes `await using` work in both.
 */
const symbols = Symbol as unknown as { asyncDispose?: symbol, dispose?: symbol };
symbols.asyncDispose ??= Symbol.for('Symbol.asyncDispose');
symbols.dispose ??= Symbol.for('Symbol.dispose');

export {};

/**
 * The smallest Reflect metadata API that `@peculiar/x509` needs.
 *
 * `@peculiar/x509` uses tsyringe for its internal registry, and tsyringe refuses to load unless
 * `Reflect.getMetadata` exists. The usual polyfill (`reflect-metadata`) is not a dependency of
 * this repository, so this module installs a small equivalent when, and only when, no polyfill is
 * present. It stores metadata only; it does nothing cryptographic. If `reflect-metadata` is ever
 * added, import it before this library and this shim steps aside.
 *
 * @internal
 */

type Key = unknown;
type PropertyKeyOrUndefined = string | symbol | undefined;

interface ReflectMetadataApi {
  defineMetadata(key: Key, value: unknown, target: object, property?: PropertyKeyOrUndefined): void;
  getOwnMetadata(key: Key, target: object, property?: PropertyKeyOrUndefined): unknown;
  getMetadata(key: Key, target: object, property?: PropertyKeyOrUndefined): unknown;
  hasOwnMetadata(key: Key, target: object, property?: PropertyKeyOrUndefined): boolean;
  hasMetadata(key: Key, target: object, property?: PropertyKeyOrUndefined): boolean;
  metadata(key: Key, value: unknown): (target: object, property?: PropertyKeyOrUndefined) => void;
}

const reflect = Reflect as unknown as Partial<ReflectMetadataApi>;

if (typeof reflect.getMetadata !== 'function') {
  const store = new WeakMap<object, Map<PropertyKeyOrUndefined, Map<Key, unknown>>>();

  const ownMap = (target: object, property: PropertyKeyOrUndefined, create: boolean) => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      byProperty = new Map();
      store.set(target, byProperty);
    }
    let byKey = byProperty.get(property);
    if (!byKey) {
      if (!create) return undefined;
      byKey = new Map();
      byProperty.set(property, byKey);
    }
    return byKey;
  };

  const api: ReflectMetadataApi = {
    defineMetadata(key, value, target, property) {
      ownMap(target, property, true)!.set(key, value);
    },
    getOwnMetadata(key, target, property) {
      return ownMap(target, property, false)?.get(key);
    },
    hasOwnMetadata(key, target, property) {
      return ownMap(target, property, false)?.has(key) ?? false;
    },
    getMetadata(key, target, property) {
      for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
        const map = ownMap(t, property, false);
        if (map?.has(key)) return map.get(key);
      }
      return undefined;
    },
    hasMetadata(key, target, property) {
      for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
        if (ownMap(t, property, false)?.has(key)) return true;
      }
      return false;
    },
    metadata(key, value) {
      return (target, property) => api.defineMetadata(key, value, target, property);
    },
  };

  for (const [name, fn] of Object.entries(api)) {
    Object.defineProperty(Reflect, name, { value: fn, writable: true, configurable: true });
  }
}

export {};

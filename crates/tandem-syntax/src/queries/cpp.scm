; What C++ adds to the C definitions.

(class_specifier name: (_) @name body: (_)) @class
(field_declaration declarator: (_) @declarator) @method
(namespace_definition name: (_) @name) @module
(alias_declaration name: (type_identifier) @name) @type_alias

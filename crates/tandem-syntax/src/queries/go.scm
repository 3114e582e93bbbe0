; Definitions in Go. `type` specs are structs, interfaces or aliases depending on their type
; (decided in the code from @go_type).

(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(method_elem name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name) @go_type
(type_alias name: (type_identifier) @name) @type_alias
(const_spec name: (identifier) @name) @constant

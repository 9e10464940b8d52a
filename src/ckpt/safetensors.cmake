# slime_safetensors: HF safetensors reader (mmap, strict validation) and writer, single files and sharded
# checkpoint directories.
add_library(slime_safetensors STATIC safetensors.cpp)
target_link_libraries(slime_safetensors PUBLIC slime_core)

slime_add_test(NAME safetensors_test SOURCES safetensors_test.cpp LIBS slime_safetensors)

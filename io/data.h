#pragma once
// keel::data: datasets, loaders, readers (IDX, CSV), transforms and splits. See docs/data.md.
#include "keel/io/csv.h"
#include "keel/io/data_loader.h"
#include "keel/io/dataset.h"
#include "keel/io/fashion_mnist.h"
#include "keel/io/idx.h"
#include "keel/io/sha256.h"
#include "keel/io/split.h"
#include "keel/io/transforms.h"

#pragma once
// Keel: the whole public API.
//   #include <keel/keel.h>
//   using namespace keel;
#include "keel/core/device.h"
#include "keel/core/dtype.h"
#include "keel/core/error.h"
#include "keel/core/half.h"
#include "keel/core/rng.h"
#include "keel/core/scalar.h"
#include "keel/core/storage.h"
#include "keel/core/tensor.h"
#include "keel/autograd/engine.h"
#include "keel/autograd/function.h"
#include "keel/autograd/grad_mode.h"
#include "keel/autograd/gradcheck.h"
#include "keel/autograd/node.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/linalg.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/loss.h"
